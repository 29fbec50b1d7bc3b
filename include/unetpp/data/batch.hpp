#pragma once
// Training samples and the batch sampler that crops and augments them into N C H W batches.
//
// A TrainSample holds what training reads from one image, prepared once: the normalised image
// (normalize.hpp), its target channels (targets.hpp) and its weight map. BatchSampler then fills
// batch `step` with batch_size augmented crops (augment.hpp). Item n of step s:
//   1. gets its own Rng seeded from (seed, s, n) (batch_item_seed), never shared;
//   2. picks a sample with probability proportional to kind_weights[its kind] (so with equal
//      weights every image is equally likely; raising one kind's weight oversamples it);
//   3. is augmented into slice n of the batch tensors.
// Items are filled in parallel (parallel_for over n) and, each owning its Rng and its slice, the
// batch is bit-identical for any thread count and for any order in which steps are asked for.

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "unetpp/data/augment.hpp"
#include "unetpp/data/dsb_dataset.hpp"
#include "unetpp/data/image_kind.hpp"
#include "unetpp/data/normalize.hpp"
#include "unetpp/data/targets.hpp"
#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct TrainSample {
    std::string id;
    ImageKind kind = ImageKind::fluorescence;
    Tensor<float> image;    // {1, H, W} normalised (image_normalize)
    Tensor<float> targets;  // {targets_channel_count, H, W}
    Tensor<float> weights;  // {1, H, W}
};

struct TrainSampleSpec {
    NormalizeSpec normalize;
    TargetSpec targets;
    WeightSpec weights;
    bool weight_map = true;  // false: weights are w_c only (foreground/background_weight)
};

// Prepares one training sample from a raw image {C, H, W} in [0, 1] and its labels (H x W):
// classifies the kind, normalises, builds targets and weights. Requires matching sizes.
inline TrainSample train_sample_make(const TrainSampleSpec& spec, const std::string& id,
                                     const Tensor<float>& image, const LabelMap& labels) {
    if (image.rank() != 3 || image.dim(1) != labels.height || image.dim(2) != labels.width) {
        throw ShapeError(detail::concat("train_sample_make \"", id, "\": image ",
                                        image.shape().str(), " and labels ", labels.height, "x",
                                        labels.width, " must share H x W"));
    }
    TrainSample sample;
    sample.id = id;
    sample.kind = image_kind_classify(image);
    sample.image = image_normalize(image, sample.kind, spec.normalize);
    sample.targets = targets_make(spec.targets, labels);
    if (spec.weight_map) {
        sample.weights = weight_map_make(spec.weights, labels);
    } else {
        WeightSpec flat = spec.weights;
        flat.w0 = 0.0;
        sample.weights = weight_map_make(flat, labels);
    }
    return sample;
}

// The same from a loaded DSB sample, which must have labels.
inline TrainSample train_sample_make(const TrainSampleSpec& spec, const DsbSample& dsb) {
    if (!dsb.has_labels) {
        throw Error(detail::concat("train_sample_make: sample \"", dsb.id, "\" has no masks ",
                                   "(a test-stage sample cannot be trained on)"));
    }
    return train_sample_make(spec, dsb.id, dsb.image, dsb.labels);
}

struct BatchSpec {
    int64_t batch_size = 8;
    AugmentSpec augment;  // augment.crop is the batch's H and W
    std::array<double, kImageKindCount> kind_weights = {1.0, 1.0, 1.0};  // by ImageKind
    uint64_t seed = 1;
};

struct Batch {
    Tensor<float> images;   // {N, C, crop, crop}
    Tensor<float> targets;  // {N, T, crop, crop}
    Tensor<float> weights;  // {N, 1, crop, crop}
    std::vector<int64_t> sample_index;  // which sample each item came from
};

// The seed of item `item` of batch `step`: splitmix64-style mixing of the three numbers.
inline uint64_t batch_item_seed(uint64_t seed, int64_t step, int64_t item) {
    uint64_t z = seed;
    for (uint64_t v : {uint64_t(step), uint64_t(item)}) {
        z ^= v + 0x9e3779b97f4a7c15ULL + (z << 6) + (z >> 2);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
    }
    return z;
}

class BatchSampler {
public:
    // Keeps a reference to `samples`, which must outlive the sampler and stay unchanged. Requires
    // a non-empty list whose images share C and targets share T, and a positive total weight.
    BatchSampler(const BatchSpec& spec, const std::vector<TrainSample>& samples)
        : spec_(spec), samples_(samples) {
        if (samples.empty() || spec.batch_size <= 0 || spec.augment.crop <= 0) {
            throw Error(detail::concat("BatchSampler: need samples (got ", samples.size(),
                                       "), batch_size > 0 (got ", spec.batch_size,
                                       ") and crop > 0 (got ", spec.augment.crop, ")"));
        }
        double total = 0.0;
        for (const TrainSample& s : samples) {
            if (s.image.rank() != 3 || s.targets.rank() != 3 ||
                s.image.dim(0) != samples[0].image.dim(0) ||
                s.targets.dim(0) != samples[0].targets.dim(0)) {
                throw ShapeError(detail::concat("BatchSampler: sample \"", s.id, "\" has image ",
                                                s.image.shape().str(), " and targets ",
                                                s.targets.shape().str(), "; the first sample has ",
                                                samples[0].image.shape().str(), " and ",
                                                samples[0].targets.shape().str()));
            }
            double w = spec.kind_weights[size_t(s.kind)];
            if (!(w >= 0.0)) {
                throw Error(detail::concat("BatchSampler: kind weight for ",
                                           image_kind_name(s.kind), " is ", w, "; need >= 0"));
            }
            total += w;
            cumulative_.push_back(total);
        }
        if (!(total > 0.0)) {
            throw Error("BatchSampler: the kind weights give every sample probability 0");
        }
    }

    int64_t input_channels() const { return samples_[0].image.dim(0); }
    int64_t target_channels() const { return samples_[0].targets.dim(0); }

    // Fills `batch` (reshaped as needed) with batch `step`; see the header comment.
    void batch_fill(int64_t step, Batch& batch) const {
        int64_t n = spec_.batch_size, crop = spec_.augment.crop;
        Shape images{n, input_channels(), crop, crop}, targets{n, target_channels(), crop, crop};
        if (batch.images.shape() != images) batch.images.resize(images);
        if (batch.targets.shape() != targets) batch.targets.resize(targets);
        Shape weights{n, 1, crop, crop};
        if (batch.weights.shape() != weights) batch.weights.resize(weights);
        batch.sample_index.assign(size_t(n), 0);
        parallel_for(0, n, [&](int64_t item) {
            Rng rng(batch_item_seed(spec_.seed, step, item));
            int64_t index = sample_pick(rng);
            batch.sample_index[size_t(item)] = index;
            const TrainSample& s = samples_[size_t(index)];
            augment_apply(spec_.augment, AugmentSource{s.image, s.targets, s.weights}, rng,
                          AugmentDestination{batch.images.batch(item), batch.targets.batch(item),
                                             batch.weights.batch(item)});
        });
    }

    Batch batch_make(int64_t step) const {
        Batch batch;
        batch_fill(step, batch);
        return batch;
    }

private:
    int64_t sample_pick(Rng& rng) const {
        double u = rng.uniform() * cumulative_.back();
        // the first sample whose cumulative weight exceeds u; zero-weight samples have empty
        // intervals and are never chosen
        auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), u);
        auto index = int64_t(it - cumulative_.begin());
        index = std::min<int64_t>(index, int64_t(cumulative_.size()) - 1);
        return index;
    }

    BatchSpec spec_;
    const std::vector<TrainSample>& samples_;
    std::vector<double> cumulative_;
};

}  // namespace unetpp
