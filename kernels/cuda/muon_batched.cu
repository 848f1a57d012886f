#include <cublasLt.h>
#include <cuda_bf16.h>

#include <algorithm>

#include "muonrec/engine/allocator.h"
#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/kernels/cuda/muon.h"
#include "muonrec/kernels/cuda/vector_io.cuh"
#include "muonrec/kernels/tensor_chunk.h"

namespace muonrec::kernels::cuda {
namespace {

using bf16 = __nv_bfloat16;

// The elementwise passes run one block per chunk of one matrix.
constexpr unsigned kBlock = 256;
constexpr int64_t kChunkElements = 16384;
// Every matrix of a stack starts on a 256-byte boundary (128 bf16): cuBLASLt's fastest kernels and
// the 8-byte vector accesses both want it, and a stride of whole 256 bytes keeps it for the batch.
constexpr int64_t kSlotElements = 128;
// cuBLASLt may split the inner dimension of the long Gram products across blocks through this.
constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// Where matrix j's iterate sits in the stacks and which chunks (and norm partials) cover it.
struct StackSlot {
  int64_t offset;
  int64_t first_chunk;
  int64_t chunk_count;
};

// Momentum (torch's lerp forms) over one chunk. The update, rounded to bf16, lands in the stack in
// the parameter's own orientation; the chunk's sum of squares of the rounded values goes to
// partials[chunk], for a norm that is reproducible bit for bit (fixed chunks, fixed order).
__global__ void __launch_bounds__(kBlock)
    momentum_to_stack_kernel(const MuonMatrix* __restrict__ matrices, const StackSlot* __restrict__ slots,
                             const TensorChunk* __restrict__ chunks, const MuonHyper* __restrict__ hyper,
                             bf16* __restrict__ stack, float* __restrict__ partials) {
  __shared__ float reduce[kBlock / 32];
  const TensorChunk chunk = chunks[blockIdx.x];
  const MuonMatrix mat = matrices[chunk.tensor];
  bf16* x = stack + slots[chunk.tensor].offset;
  const float mu = hyper->momentum;
  const bool nesterov = hyper->nesterov != 0;
  auto update = [&](float g, float& buf) {
    const float b = buf + (1.0f - mu) * (g - buf);
    buf = b;
    return round_bf16(nesterov ? b - (b - g) * (1.0f - mu) : b);
  };
  float sum_sq = 0.0f;
  // Chunk starts are multiples of 4 within slots aligned to 256 bytes: the stack side is always
  // aligned; the momentum buffer is an allocation of its own; the gradient may be anywhere.
  const bool vectorizable = aligned_to(mat.momentum_buffer + chunk.begin, 16);
  const bool grad_aligned = aligned_to(mat.grad + chunk.begin, 16);
  const int64_t vector_end = vectorizable ? chunk.begin + (chunk.end - chunk.begin) / 4 * 4 : chunk.begin;
  for (int64_t i = chunk.begin + 4 * threadIdx.x; i < vector_end; i += 4 * blockDim.x) {
    const float4 g = load_float4(mat.grad + i, grad_aligned);
    float4 b = load_float4(mat.momentum_buffer + i, true);
    const float4 u = make_float4(update(g.x, b.x), update(g.y, b.y), update(g.z, b.z), update(g.w, b.w));
    store_float4(mat.momentum_buffer + i, b);
    store_bf16x4(x + i, u);  // exact: u is already bf16-valued
    sum_sq += u.x * u.x + u.y * u.y + u.z * u.z + u.w * u.w;
  }
  for (int64_t i = vector_end + threadIdx.x; i < chunk.end; i += blockDim.x) {
    const float u = update(mat.grad[i], mat.momentum_buffer[i]);
    x[i] = __float2bfloat16_rn(u);
    sum_sq += u * u;
  }
  const float total = block_reduce(sum_sq, SumOp{}, reduce);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// x /= max(norm * factor, eps), rounded back to bf16, over one chunk. Every block of a matrix sums
// the same partials in the same order, so they all use the same norm (bf16-rounded, as torch's
// norm() of a bf16 tensor).
__global__ void __launch_bounds__(kBlock)
    normalize_stack_kernel(const StackSlot* __restrict__ slots, const TensorChunk* __restrict__ chunks,
                           const MuonHyper* __restrict__ hyper, const float* __restrict__ partials,
                           bf16* __restrict__ stack) {
  __shared__ float reduce[kBlock / 32];
  const TensorChunk chunk = chunks[blockIdx.x];
  const StackSlot slot = slots[chunk.tensor];
  float acc = 0.0f;
  for (int64_t p = threadIdx.x; p < slot.chunk_count; p += blockDim.x) acc += partials[slot.first_chunk + p];
  const float norm = round_bf16(sqrtf(block_reduce(acc, SumOp{}, reduce)));
  const float inv = 1.0f / fmaxf(norm * hyper->norm_factor, hyper->eps);
  bf16* x = stack + slot.offset;
  const int64_t vector_end = chunk.begin + (chunk.end - chunk.begin) / 4 * 4;
  for (int64_t i = chunk.begin + 4 * threadIdx.x; i < vector_end; i += 4 * blockDim.x) {
    const float4 v = load_bf16x4(x + i);
    store_bf16x4(x + i, make_float4(v.x * inv, v.y * inv, v.z * inv, v.w * inv));
  }
  for (int64_t i = vector_end + threadIdx.x; i < chunk.end; i += blockDim.x)
    x[i] = __float2bfloat16_rn(__bfloat162float(x[i]) * inv);
}

// p = p (1 - lr wd) - adjusted_lr x over one chunk (decoupled weight decay with the unadjusted lr).
__global__ void __launch_bounds__(kBlock)
    apply_update_kernel(const MuonMatrix* __restrict__ matrices, const StackSlot* __restrict__ slots,
                        const TensorChunk* __restrict__ chunks, const MuonHyper* __restrict__ hyper,
                        const bf16* __restrict__ stack) {
  const TensorChunk chunk = chunks[blockIdx.x];
  const MuonMatrix mat = matrices[chunk.tensor];
  const bf16* x = stack + slots[chunk.tensor].offset;
  const float decay = 1.0f - hyper->lr * hyper->weight_decay;
  const float adjusted_lr = static_cast<float>(static_cast<double>(hyper->lr) * mat.lr_scale);
  const int64_t vector_end =
      aligned_to(mat.param + chunk.begin, 16) ? chunk.begin + (chunk.end - chunk.begin) / 4 * 4 : chunk.begin;
  for (int64_t i = chunk.begin + 4 * threadIdx.x; i < vector_end; i += 4 * blockDim.x) {
    const float4 p = load_float4(mat.param + i, true);
    const float4 v = load_bf16x4(x + i);
    store_float4(mat.param + i, make_float4(p.x * decay - adjusted_lr * v.x, p.y * decay - adjusted_lr * v.y,
                                            p.z * decay - adjusted_lr * v.z, p.w * decay - adjusted_lr * v.w));
  }
  for (int64_t i = vector_end + threadIdx.x; i < chunk.end; i += blockDim.x)
    mat.param[i] = mat.param[i] * decay - adjusted_lr * __bfloat162float(x[i]);
}

cublasLtHandle_t lt_handle() {
  static const cublasLtHandle_t handle = [] {
    cublasLtHandle_t h = nullptr;
    CUBLAS_CHECK(cublasLtCreate(&h));
    return h;
  }();
  return handle;
}

// The largest power of two (up to 256) dividing the address: what cuBLASLt may assume of a buffer.
uint32_t alignment_of(const void* p) {
  uint32_t alignment = 256;
  while (reinterpret_cast<uintptr_t>(p) % alignment != 0) alignment /= 2;
  return alignment;
}

// D = alpha op(A) op(B) + beta C over a strided batch of column-major bf16 matrices with fp32
// accumulation (CUBLAS_COMPUTE_32F: torch's setting), C and D distinct buffers of one layout, so no
// copy of C is needed. The descriptors and the heuristic's choice of algorithm are made once.
class StridedGemm {
 public:
  struct Operand {
    int64_t ld;
    int64_t stride;  // between the matrices of the batch (elements)
  };

  StridedGemm(cublasOperation_t trans_a, cublasOperation_t trans_b, int64_t m, int64_t n, int64_t k, Operand a,
              Operand b, Operand c, int32_t count, uint32_t alignment) {
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    const bool ta = trans_a == CUBLAS_OP_T, tb = trans_b == CUBLAS_OP_T;
    a_ = make_layout(ta ? k : m, ta ? m : k, a, count);
    b_ = make_layout(tb ? n : k, tb ? k : n, b, count);
    c_ = make_layout(m, n, c, count);
    cublasLtMatmulPreference_t preference = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
    const uint64_t workspace = kGemmWorkspaceBytes;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                      sizeof workspace));
    for (auto attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                           CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &alignment, sizeof alignment));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(lt_handle(), desc_, a_, b_, c_, c_, preference, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(preference);
    CUBLAS_CHECK(status);
    MUONREC_CHECK(found > 0, "muon: cuBLASLt offers no bf16 algorithm for {} products of {}x{}x{}", count, m, n, k);
    algo_ = result.algo;
  }

  ~StridedGemm() {
    for (cublasLtMatrixLayout_t layout : {a_, b_, c_})
      if (layout) cublasLtMatrixLayoutDestroy(layout);
    if (desc_) cublasLtMatmulDescDestroy(desc_);
  }
  StridedGemm(const StridedGemm&) = delete;
  StridedGemm& operator=(const StridedGemm&) = delete;

  // alpha and beta are host scalars, read when the call is queued.
  void run(float alpha, const bf16* a, const bf16* b, float beta, const bf16* c, bf16* d, void* workspace,
           cudaStream_t stream) const {
    CUBLAS_CHECK(cublasLtMatmul(lt_handle(), desc_, &alpha, a, a_, b, b_, &beta, c, c_, d, c_, &algo_, workspace,
                                kGemmWorkspaceBytes, stream));
  }

 private:
  static cublasLtMatrixLayout_t make_layout(int64_t rows, int64_t cols, Operand operand, int32_t count) {
    cublasLtMatrixLayout_t layout = nullptr;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&layout, CUDA_R_16BF, static_cast<uint64_t>(rows),
                                            static_cast<uint64_t>(cols), operand.ld));
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
    CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &operand.stride,
                                                  sizeof operand.stride));
    return layout;
  }

  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;  // C and D share c_
  cublasLtMatmulAlgo_t algo_{};
};

}  // namespace

// Matrices of one shape, consecutive in the stacks, and the three products of their Newton-Schulz
// iteration in cuBLAS's column-major view: a row-major [rows, cols] matrix U is U^T, [cols x rows]
// with leading dimension cols. Wide (X = U): A = X X^T = Ucm^T Ucm and X' = a X + B X, i.e.
// X'cm = a Ucm + Ucm Bcm. Tall (X = U^T, no copy): A = U^T U = Ucm Ucm^T and U' = a U + U B, i.e.
// U'cm = a Ucm + Bcm Ucm. Every product reads its operands as stored, so nothing assumes that A and
// B are symmetric.
struct MuonBatchedStep::Impl {
  struct Group {
    bool tall;
    int64_t iterate_offset;
    int64_t gram_offset;
    std::unique_ptr<StridedGemm> gram, poly, update;
  };

  std::vector<std::array<float, 3>> coefficients;
  int64_t chunk_count = 0;
  std::unique_ptr<Storage> iterates[2], gram, poly, partials, workspace, slots, chunks;
  std::vector<Group> groups;

  bf16* iterate(int which) const { return static_cast<bf16*>(iterates[which]->data()); }
};

MuonBatchedStep::MuonBatchedStep(std::vector<Shape2> shapes, std::vector<std::array<float, 3>> coefficients)
    : shapes_(std::move(shapes)), impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.coefficients = std::move(coefficients);
  MUONREC_CHECK(!shapes_.empty(), "MuonBatchedStep: no matrices");
  // The layout: slots in the iterate stacks, chunks, and one Gram-sized slot per matrix.
  std::vector<StackSlot> slots;
  std::vector<TensorChunk> chunks;
  int64_t iterate_elements = 0, gram_elements = 0;
  for (size_t j = 0; j < shapes_.size(); ++j) {
    const int64_t rows = shapes_[j][0], cols = shapes_[j][1], n = rows * cols, side = std::min(rows, cols);
    MUONREC_CHECK(n > 0, "MuonBatchedStep: empty matrix {}x{}", rows, cols);
    slots.push_back({iterate_elements, static_cast<int64_t>(chunks.size()), 0});
    for (int64_t begin = 0; begin < n; begin += kChunkElements)
      chunks.push_back({static_cast<int64_t>(j), begin, std::min(begin + kChunkElements, n)});
    slots.back().chunk_count = static_cast<int64_t>(chunks.size()) - slots.back().first_chunk;
    iterate_elements += round_up(n, kSlotElements);
    gram_elements += round_up(side * side, kSlotElements);
  }
  s.chunk_count = static_cast<int64_t>(chunks.size());
  for (auto& iterate : s.iterates) iterate = std::make_unique<Storage>(iterate_elements * sizeof(bf16), Device::CUDA);
  s.gram = std::make_unique<Storage>(gram_elements * sizeof(bf16), Device::CUDA);
  s.poly = std::make_unique<Storage>(gram_elements * sizeof(bf16), Device::CUDA);
  s.partials = std::make_unique<Storage>(chunks.size() * sizeof(float), Device::CUDA);
  s.workspace = std::make_unique<Storage>(kGemmWorkspaceBytes, Device::CUDA);
  s.slots = std::make_unique<Storage>(slots.size() * sizeof(StackSlot), Device::CUDA);
  s.chunks = std::make_unique<Storage>(chunks.size() * sizeof(TensorChunk), Device::CUDA);
  copy_bytes(s.slots->data(), Device::CUDA, slots.data(), Device::CPU, s.slots->bytes());
  copy_bytes(s.chunks->data(), Device::CUDA, chunks.data(), Device::CPU, s.chunks->bytes());

  uint32_t alignment = 256;
  for (const Storage* buffer : {s.iterates[0].get(), s.iterates[1].get(), s.gram.get(), s.poly.get()})
    alignment = std::min(alignment, alignment_of(buffer->data()));
  int64_t gram_offset = 0;
  for (size_t first = 0; first < shapes_.size();) {
    size_t last = first;
    while (last < shapes_.size() && shapes_[last] == shapes_[first]) ++last;
    const auto count = static_cast<int32_t>(last - first);
    const int64_t rows = shapes_[first][0], cols = shapes_[first][1], side = std::min(rows, cols);
    const bool tall = rows > cols;
    const StridedGemm::Operand x{cols, round_up(rows * cols, kSlotElements)};
    const StridedGemm::Operand g{side, round_up(side * side, kSlotElements)};
    const auto N = CUBLAS_OP_N, T = CUBLAS_OP_T;
    Impl::Group group{tall, slots[first].offset, gram_offset, nullptr, nullptr, nullptr};
    group.gram = std::make_unique<StridedGemm>(tall ? N : T, tall ? T : N, side, side, tall ? rows : cols, x, x, g,
                                               count, alignment);
    group.poly = std::make_unique<StridedGemm>(N, N, side, side, side, g, g, g, count, alignment);
    group.update = tall ? std::make_unique<StridedGemm>(N, N, cols, rows, cols, g, x, x, count, alignment)
                        : std::make_unique<StridedGemm>(N, N, cols, rows, rows, x, g, x, count, alignment);
    s.groups.push_back(std::move(group));
    gram_offset += count * g.stride;
    first = last;
  }
}

MuonBatchedStep::~MuonBatchedStep() = default;

void MuonBatchedStep::run(const MuonMatrix* matrices, const MuonHyper* hyper, cudaStream_t stream) const {
  NVTX_RANGE("muon_batched_step");
  const Impl& s = *impl_;
  const auto* slots = static_cast<const StackSlot*>(s.slots->data());
  const auto* chunks = static_cast<const TensorChunk*>(s.chunks->data());
  const auto grid = static_cast<unsigned>(s.chunk_count);
  momentum_to_stack_kernel<<<grid, kBlock, 0, stream>>>(matrices, slots, chunks, hyper, s.iterate(0),
                                                        static_cast<float*>(s.partials->data()));
  CUDA_LAUNCH_CHECK();
  normalize_stack_kernel<<<grid, kBlock, 0, stream>>>(slots, chunks, hyper,
                                                      static_cast<const float*>(s.partials->data()), s.iterate(0));
  CUDA_LAUNCH_CHECK();
  const int ns_steps = static_cast<int>(s.coefficients.size());
  for (const Impl::Group& group : s.groups) {
    bf16* gram = static_cast<bf16*>(s.gram->data()) + group.gram_offset;
    bf16* poly = static_cast<bf16*>(s.poly->data()) + group.gram_offset;
    for (int step = 0; step < ns_steps; ++step) {
      // The iterates alternate between the two stacks: X' never overwrites the X it reads.
      const bf16* x = s.iterate(step % 2) + group.iterate_offset;
      bf16* next = s.iterate((step + 1) % 2) + group.iterate_offset;
      const auto& [a, b, c] = s.coefficients[step];
      group.gram->run(1.0f, x, x, 0.0f, gram, gram, s.workspace->data(), stream);
      group.poly->run(c, gram, gram, b, gram, poly, s.workspace->data(), stream);
      if (group.tall) {
        group.update->run(1.0f, poly, x, a, x, next, s.workspace->data(), stream);
      } else {
        group.update->run(1.0f, x, poly, a, x, next, s.workspace->data(), stream);
      }
    }
  }
  apply_update_kernel<<<grid, kBlock, 0, stream>>>(matrices, slots, chunks, hyper, s.iterate(ns_steps % 2));
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda
