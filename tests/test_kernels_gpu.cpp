// placeholder until the CUDA kernel parity tests land
