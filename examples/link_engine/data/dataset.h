// The prototype's own data/dataset.h, named as the engine's muonrec/data/dataset.h is: research code
// often has such a folder on its include path. The engine's headers reach theirs through the
// muonrec/ prefix, so neither shadows the other (this example would not compile if one did).
#pragma once

#include <muonrec/data/synthetic.h>

namespace prototype {

// The data this prototype studies: a small synthetic catalogue.
inline muonrec::data::SequenceDataset example_dataset() {
  muonrec::data::SyntheticOptions options;
  options.users = 300;
  options.items = 100;
  return muonrec::data::make_synthetic_dataset(options);
}

}  // namespace prototype
