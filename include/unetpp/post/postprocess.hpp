#pragma once
// From network probabilities to separate, non-overlapping nuclei.
//
// Inputs: a nucleus probability map N (probability that a pixel lies on a nucleus) and, when the
// network predicts one, a boundary probability map B (probability that a pixel lies on a nucleus
// contour or in the thin gap between touching nuclei). Both are {H, W} maps of values in [0, 1]
// (apply the sigmoid or softmax first if the network gives logits).
//
// Pipeline (each threshold lives in PostprocessConfig; docs/postprocessing.md explains defaults):
//   1. mask    = N > mask_threshold
//   2. seeds   = N > marker_threshold AND B < boundary_threshold            (with B)
//              = N > marker_threshold AND dist(mask) >= distance_marker_min  (without B)
//      markers = 4-connected components of seeds, eroded marker_erosion times, components
//                smaller than min_marker_size dropped
//   3. elevation = -(N - B) with B, -dist(mask) without; watershed from the markers inside mask
//   4. mask components that no marker reaches become objects of their own (keep_unmarked)
//   5. objects smaller than min_object_size pixels are removed
//   6. holes inside each object are filled (fill_holes)
//   7. labels are renumbered 1..n in raster order of each object's first pixel
// The result never has overlapping objects (it is one label map) and is deterministic.

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/label_map.hpp"
#include "unetpp/post/connected_components.hpp"
#include "unetpp/post/morphology.hpp"
#include "unetpp/post/watershed.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

struct PostprocessConfig {
    // A pixel is nucleus when its nucleus probability exceeds this.
    float mask_threshold = 0.5f;
    // Marker pixels need a nucleus probability above this (>= mask_threshold: markers sit
    // inside the mask; a higher value gives fewer, more confident seeds).
    float marker_threshold = 0.5f;
    // ... and, with a boundary map, a boundary probability below this.
    float boundary_threshold = 0.5f;
    // Without a boundary map, marker pixels lie at least this far (in pixels, Euclidean) from the
    // background, which splits nuclei joined by a neck narrower than twice this distance.
    float distance_marker_min = 3.0f;
    // 3x3 erosions applied to the markers before use (0: none).
    int marker_erosion = 0;
    // Markers with fewer pixels are dropped (their region is then flooded by a neighbour or
    // kept whole by keep_unmarked).
    int64_t min_marker_size = 4;
    // Objects with fewer pixels are removed at the end.
    int64_t min_object_size = 10;
    // Fill background holes enclosed by a single object.
    bool fill_holes = true;
    // Mask components that contain no marker become objects instead of being dropped.
    bool keep_unmarked = true;
    // Channels of a {C, H, W} or {1, C, H, W} probability tensor (postprocess_probs). Set
    // boundary_channel to -1 when the network predicts no boundary channel.
    int nucleus_channel = 0;
    int boundary_channel = 1;
};

// The thresholds and sizes of a config as one line of key=value pairs (the channels are not
// included): "mask_threshold=0.5 marker_threshold=0.7 ...". Checkpoints carry it as metadata.
inline std::string postprocess_config_to_string(const PostprocessConfig& c) {
    std::ostringstream out;
    out << "mask_threshold=" << c.mask_threshold << " marker_threshold=" << c.marker_threshold
        << " boundary_threshold=" << c.boundary_threshold
        << " distance_marker_min=" << c.distance_marker_min
        << " marker_erosion=" << c.marker_erosion << " min_marker_size=" << c.min_marker_size
        << " min_object_size=" << c.min_object_size << " fill_holes=" << int(c.fill_holes)
        << " keep_unmarked=" << int(c.keep_unmarked);
    return out.str();
}

// Parses postprocess_config_to_string's form onto `base` (keys absent from `text` keep base's
// values). Throws Error naming the item on an unknown key or a value that is not a number.
inline PostprocessConfig postprocess_config_parse(const std::string& text,
                                                  PostprocessConfig base = PostprocessConfig{}) {
    std::istringstream in(text);
    for (std::string item; in >> item;) {
        const std::size_t eq = item.find('=');
        const std::string key = item.substr(0, eq == std::string::npos ? 0 : eq);
        const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (key.empty() || value.empty() || *end != '\0') {
            throw Error(detail::concat("postprocess_config_parse: \"", item,
                                       "\" is not key=number"));
        }
        if (key == "mask_threshold") base.mask_threshold = float(v);
        else if (key == "marker_threshold") base.marker_threshold = float(v);
        else if (key == "boundary_threshold") base.boundary_threshold = float(v);
        else if (key == "distance_marker_min") base.distance_marker_min = float(v);
        else if (key == "marker_erosion") base.marker_erosion = int(v);
        else if (key == "min_marker_size") base.min_marker_size = int64_t(v);
        else if (key == "min_object_size") base.min_object_size = int64_t(v);
        else if (key == "fill_holes") base.fill_holes = v != 0;
        else if (key == "keep_unmarked") base.keep_unmarked = v != 0;
        else throw Error(detail::concat("postprocess_config_parse: unknown key \"", key, "\""));
    }
    return base;
}

namespace detail {

inline void postprocess_config_check(const PostprocessConfig& config) {
    if (config.marker_erosion < 0 || config.min_marker_size < 0 || config.min_object_size < 0) {
        throw Error(concat("PostprocessConfig: marker_erosion ", config.marker_erosion,
                           ", min_marker_size ", config.min_marker_size, " and min_object_size ",
                           config.min_object_size, " must not be negative"));
    }
}

// Steps 2: markers from a per-pixel seed predicate.
inline LabelMap postprocess_markers(const PostprocessConfig& config, const LabelMap& seeds) {
    LabelMap markers = connected_components_label(seeds, Connectivity::Four);
    for (int i = 0; i < config.marker_erosion; ++i) markers = morphology_erode(markers);
    return morphology_remove_small(markers, config.min_marker_size);
}

// Steps 3 to 7, given the mask, markers and elevation.
inline LabelMap postprocess_finish(const PostprocessConfig& config, const LabelMap& mask,
                                   const LabelMap& markers, const Tensor<float>& elevation) {
    LabelMap labels = watershed_flood(elevation, markers, mask, Connectivity::Four);

    // 4. unreached mask components get labels after the largest marker label
    if (config.keep_unmarked) {
        LabelMap unreached(mask.height, mask.width);
        for (int64_t p = 0; p < mask.size(); ++p) {
            unreached.labels[p] = mask.labels[p] != 0 && labels.labels[p] == 0;
        }
        LabelMap extra = connected_components_label(unreached, Connectivity::Eight);
        int32_t offset = labels.max_label();
        for (int64_t p = 0; p < mask.size(); ++p) {
            if (extra.labels[p] != 0) labels.labels[p] = offset + extra.labels[p];
        }
    }

    // 5.-7. clean up and renumber
    labels = morphology_remove_small(labels, config.min_object_size);
    if (config.fill_holes) labels = morphology_fill_holes(labels);
    return labels_relabel(labels);
}

// Channel c of a {C, H, W} or {1, C, H, W} contiguous tensor as a {H, W} view.
inline ConstTensorView<float> postprocess_channel(const Tensor<float>& probs, int c,
                                                  const char* which) {
    int r = probs.rank();
    if (r != 3 && !(r == 4 && probs.dim(0) == 1)) {
        throw ShapeError(concat("postprocess_probs: expected probabilities of shape {C, H, W} or ",
                                "{1, C, H, W}, got ", probs.shape().str()));
    }
    int64_t channels = probs.dim(r - 3), h = probs.dim(r - 2), w = probs.dim(r - 1);
    if (c < 0 || c >= channels) {
        // the boundary map is optional, the nucleus map is not
        const char* hint = std::string(which) == "boundary"
                               ? " (set PostprocessConfig::boundary_channel = -1 when the network "
                                 "has no boundary output)"
                               : "";
        throw ShapeError(concat("postprocess_probs: ", which, " channel ", c, " out of range for ",
                                channels, " channels in ", probs.shape().str(), hint));
    }
    return ConstTensorView<float>(probs.data() + int64_t(c) * h * w, Shape{h, w});
}

}  // namespace detail

// Runs the pipeline with a boundary map.
// Requires: nucleus and boundary contiguous {H, W} views of probabilities (ShapeError
// otherwise). Guarantees: labels 1..n, one per nucleus, 0 on background, no overlaps.
inline LabelMap postprocess_run(const PostprocessConfig& config, ConstTensorView<float> nucleus,
                                ConstTensorView<float> boundary) {
    detail::postprocess_config_check(config);
    if (nucleus.rank() != 2) {
        throw ShapeError(detail::concat("postprocess_run: nucleus map must be {H, W}, got ",
                                        nucleus.shape().str()));
    }
    const int64_t h = nucleus.dim(0), w = nucleus.dim(1);
    detail::image_check("postprocess_run nucleus", nucleus, h, w);
    detail::image_check("postprocess_run boundary", boundary, h, w);
    const float* n = nucleus.data();
    const float* b = boundary.data();

    LabelMap mask(h, w), seeds(h, w);
    Tensor<float> elevation({h, w});
    for (int64_t p = 0; p < h * w; ++p) {
        mask.labels[p] = n[p] > config.mask_threshold;
        seeds.labels[p] = n[p] > config.marker_threshold && b[p] < config.boundary_threshold;
        elevation[p] = -(n[p] - b[p]);
    }
    return detail::postprocess_finish(config, mask, detail::postprocess_markers(config, seeds),
                                      elevation);
}

// Runs the pipeline without a boundary map: markers and elevation come from the distance
// transform of the mask. Same requirements and guarantees as the overload above.
inline LabelMap postprocess_run(const PostprocessConfig& config, ConstTensorView<float> nucleus) {
    detail::postprocess_config_check(config);
    if (nucleus.rank() != 2) {
        throw ShapeError(detail::concat("postprocess_run: nucleus map must be {H, W}, got ",
                                        nucleus.shape().str()));
    }
    const int64_t h = nucleus.dim(0), w = nucleus.dim(1);
    detail::image_check("postprocess_run nucleus", nucleus, h, w);
    const float* n = nucleus.data();

    LabelMap mask(h, w), seeds(h, w);
    for (int64_t p = 0; p < h * w; ++p) mask.labels[p] = n[p] > config.mask_threshold;
    Tensor<float> elevation = morphology_distance(mask);
    for (int64_t p = 0; p < h * w; ++p) {
        seeds.labels[p] = n[p] > config.marker_threshold &&
                          elevation[p] >= config.distance_marker_min;
        elevation[p] = -elevation[p];
    }
    return detail::postprocess_finish(config, mask, detail::postprocess_markers(config, seeds),
                                      elevation);
}

// Runs the pipeline on a network output of shape {C, H, W} or {1, C, H, W}, taking the nucleus
// and boundary maps from config.nucleus_channel and config.boundary_channel (-1: no boundary).
inline LabelMap postprocess_probs(const PostprocessConfig& config, const Tensor<float>& probs) {
    auto nucleus = detail::postprocess_channel(probs, config.nucleus_channel, "nucleus");
    if (config.boundary_channel < 0) return postprocess_run(config, nucleus);
    auto boundary = detail::postprocess_channel(probs, config.boundary_channel, "boundary");
    return postprocess_run(config, nucleus, boundary);
}

}  // namespace unetpp
