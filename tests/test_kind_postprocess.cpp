// The nucleus examples' per-kind post-processing: a model file's "nuclei.postprocess" and
// "nuclei.postprocess.<kind>" metadata as model_load reads them (examples/common/pipeline.hpp).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>

#include "../examples/common/pipeline.hpp"

using unetpp::ImageKind;

namespace {

std::string temp_path(const char* name) {
    return std::string("/tmp/unetpp_test_kind_") + name + "_" + std::to_string(::getpid()) +
           ".safetensors";
}

// A small nucleus model written with the given extra metadata.
void write_model(const std::string& path, const std::map<std::string, std::string>& extra) {
    examples::Net net(examples::nuclei_config(4, 2, false, 1));
    std::map<std::string, std::string> meta = examples::model_metadata(net);
    for (const auto& [key, value] : extra) meta[key] = value;
    unetpp::checkpoint_save_model(path, net.parameters(), meta);
}

}  // namespace

TEST_CASE("model_load gives each image kind its own post-processing or the overall one",
          "[examples][postprocess]") {
    const std::string path = temp_path("own");
    write_model(path, {{examples::kPostprocessKey, "mask_threshold=0.6 min_object_size=30"},
                       {"nuclei.postprocess.he", "mask_threshold=0.4 marker_threshold=0.8"}});
    examples::KindPostprocess post;
    examples::model_load(path, nullptr, &post);
    std::remove(path.c_str());

    CHECK(post.overall.mask_threshold == Approx(0.6f));
    CHECK(post.overall.min_object_size == 30);
    // fluorescence and brightfield: the overall config
    CHECK(post(ImageKind::fluorescence).mask_threshold == Approx(0.6f));
    CHECK(post(ImageKind::brightfield).min_object_size == 30);
    // H&E: its own keys over the overall config, the rest inherited from it
    CHECK(post(ImageKind::he).mask_threshold == Approx(0.4f));
    CHECK(post(ImageKind::he).marker_threshold == Approx(0.8f));
    CHECK(post(ImageKind::he).min_object_size == 30);
    CHECK(examples::kind_postprocess_text(post).find("he: mask_threshold=0.4") !=
          std::string::npos);

    // one config for all kinds prints as one line
    const examples::KindPostprocess same(post.overall);
    CHECK(examples::kind_postprocess_text(same) ==
          unetpp::postprocess_config_to_string(post.overall));
}

TEST_CASE("model_load gives a kind without its own key the overall config, not a neighbour's",
          "[examples][postprocess]") {
    // The layout nuclei_tune wrote on 2026-12-04: fluorescence and H&E tuned on their own,
    // brightfield (two validation images) on the overall config. GCC 12 at -O2 and -O3 with
    // -march=native (without -mtune=generic) on an AVX-512 Xeon compiled model_load so that
    // brightfield got H&E's config.
    const std::string overall =
        "mask_threshold=0.6 marker_threshold=0.6 marker_erosion=0 min_object_size=30";
    const std::string path = temp_path("neighbour");
    write_model(path, {{examples::kPostprocessKey, overall},
                       {"nuclei.postprocess.fluorescence",
                        "mask_threshold=0.6 marker_threshold=0.9 min_object_size=30"},
                       {"nuclei.postprocess.he",
                        "mask_threshold=0.7 marker_threshold=0.7 marker_erosion=2 "
                        "min_object_size=60"}});
    examples::KindPostprocess post;
    examples::model_load(path, nullptr, &post);
    std::remove(path.c_str());

    const auto& bf = post(ImageKind::brightfield);
    CHECK(bf.mask_threshold == Approx(0.6f));
    CHECK(bf.marker_threshold == Approx(0.6f));
    CHECK(bf.marker_erosion == 0);
    CHECK(bf.min_object_size == 30);
    CHECK(post(ImageKind::fluorescence).marker_threshold == Approx(0.9f));
    CHECK(post(ImageKind::fluorescence).marker_erosion == 0);
    CHECK(post(ImageKind::he).mask_threshold == Approx(0.7f));
    CHECK(post(ImageKind::he).marker_erosion == 2);
    CHECK(post(ImageKind::he).min_object_size == 60);
}

TEST_CASE("model_load refuses a bad per-kind post-processing naming the file and the key",
          "[examples][postprocess][errors]") {
    const std::string path = temp_path("bad");
    write_model(path, {{"nuclei.postprocess.fluorescence", "mask_threshold=often"}});
    examples::KindPostprocess post;
    try {
        examples::model_load(path, nullptr, &post);
        std::remove(path.c_str());
        FAIL("a bad nuclei.postprocess.fluorescence was accepted");
    } catch (const unetpp::IoError& e) {
        std::remove(path.c_str());
        const std::string what = e.what();
        CHECK(what.find(path) != std::string::npos);
        CHECK(what.find("nuclei.postprocess.fluorescence") != std::string::npos);
    }
}
