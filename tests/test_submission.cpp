// The submission CSV: rows per object, atomic writing, validated reading.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unetpp/data/dsb_dataset.hpp>
#include <unetpp/post/connected_components.hpp>
#include <unetpp/post/metric.hpp>
#include <unetpp/post/submission.hpp>
#include <unetpp/random.hpp>

using unetpp::ImageSize;
using unetpp::LabelMap;
using Catch::Matchers::Contains;

namespace {

std::string temp_path(const std::string& name) {
    return std::string("unetpp_test_submission_") + name + ".csv";
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("submission rows: one per object, one empty row for an empty image", "[submission]") {
    LabelMap labels(2, 2);
    labels.labels = {4, 0, 4, 9};  // pixels 1 3 / 2 4: label 4 at 1, 2; label 9 at 4
    auto rows = unetpp::submission_rows("img", labels);
    REQUIRE(rows.size() == 2);
    REQUIRE(rows[0].encoded_pixels == "1 2");
    REQUIRE(rows[1].encoded_pixels == "4 1");
    auto empty = unetpp::submission_rows("blank", LabelMap(3, 3));
    REQUIRE(empty.size() == 1);
    REQUIRE(empty[0].image_id == "blank");
    REQUIRE(empty[0].encoded_pixels.empty());
    REQUIRE_THROWS_AS(unetpp::submission_rows("a,b", labels), unetpp::Error);
}

TEST_CASE("submission write then read gives back the label maps", "[submission]") {
    unetpp::Rng rng(3);
    LabelMap a(7, 17), b(3, 5);
    for (int32_t& v : a.labels) v = int32_t(rng.below(4));  // objects may be disconnected
    std::vector<unetpp::SubmissionRow> rows = unetpp::submission_rows("a", a);
    for (const auto& r : unetpp::submission_rows("b", b)) rows.push_back(r);
    const std::string path = temp_path("roundtrip");
    unetpp::submission_write(path, rows);

    std::string text = read_text(path);
    REQUIRE(text.rfind("ImageId,EncodedPixels\n", 0) == 0);
    REQUIRE(text.find("\nb,\n") != std::string::npos);
    std::ifstream tmp(path + ".tmp");
    REQUIRE_FALSE(tmp.good());

    auto images = unetpp::submission_read(path, {{"a", {7, 17}}, {"b", {3, 5}}, {"c", {2, 2}}});
    REQUIRE(images.at("a").labels == a.labels);  // labels 1..3 in row order = original labels
    REQUIRE(images.at("b").max_label() == 0);
    REQUIRE(images.at("c").size() == 4);
    std::remove(path.c_str());
}

TEST_CASE("submission read accepts Windows line ends and trailing blank lines", "[submission]") {
    const std::string path = temp_path("crlf");
    write_text(path, "ImageId,EncodedPixels\r\nx,1 2\r\nx,4 1\r\n\r\n");
    auto images = unetpp::submission_read(path, {{"x", {2, 2}}});
    REQUIRE(images.at("x").labels == std::vector<int32_t>{1, 0, 1, 2});
    std::remove(path.c_str());
}

TEST_CASE("submission read rejects malformed files naming the line and value",
          "[submission][errors]") {
    const std::string path = temp_path("bad");
    const std::map<std::string, ImageSize> sizes{{"x", {3, 3}}};
    auto fails_with = [&](const std::string& text, const std::string& a, const std::string& b) {
        write_text(path, text);
        INFO(text);
        REQUIRE_THROWS_WITH(unetpp::submission_read(path, sizes), Contains(a) && Contains(b));
    };
    SECTION("header") { fails_with("Id,Pixels\nx,1 1\n", "line 1", "Id,Pixels"); }
    SECTION("no comma") { fails_with("ImageId,EncodedPixels\nx,1 1\nx 2 1\n", "line 3", "x 2 1"); }
    SECTION("unknown id") { fails_with("ImageId,EncodedPixels\ny,1 1\n", "line 2", "\"y\""); }
    SECTION("odd count") { fails_with("ImageId,EncodedPixels\nx,1 1 4\n", "line 2", "odd"); }
    SECTION("non-numeric") { fails_with("ImageId,EncodedPixels\nx,1 a\n", "line 2", "\"a\""); }
    SECTION("out of range") { fails_with("ImageId,EncodedPixels\nx,9 2\n", "line 2", "9 2"); }
    SECTION("overlap") {
        fails_with("ImageId,EncodedPixels\nx,1 3\nx,3 2\n", "line 3", "overlaps");
    }
    SECTION("empty row and objects") {
        fails_with("ImageId,EncodedPixels\nx,\nx,1 1\n", "line 3", "empty-encoding");
    }
    SECTION("row after a blank line") {
        fails_with("ImageId,EncodedPixels\nx,1 1\n\nx,5 1\n", "line 4", "blank line 3");
    }
    SECTION("empty file") {
        write_text(path, "");
        REQUIRE_THROWS_AS(unetpp::submission_read(path, sizes), unetpp::IoError);
    }
    SECTION("missing file") {
        REQUIRE_THROWS_AS(unetpp::submission_read(temp_path("absent"), sizes), unetpp::IoError);
    }
    std::remove(path.c_str());
}

TEST_CASE("submission write into a missing folder throws IoError", "[submission][errors]") {
    REQUIRE_THROWS_WITH(unetpp::submission_write("no_such_dir_h6/sub.csv", {}),
                        Contains("no_such_dir_h6/sub.csv.tmp"));
}

TEST_CASE("submission round trip of real training masks scores 1", "[submission][data]") {
    const std::string stage = std::string(UNETPP_TEST_DATA_DIR) + "/dsb2018/stage1_train";
    if (!std::filesystem::is_directory(stage)) {
        WARN("dsb2018 data absent at " << stage << ": real-mask round trip skipped");
        return;
    }
    // Three samples spread over the sorted ids; their masks go through CSV and back.
    std::vector<std::string> ids = unetpp::dsb_list_ids(stage);
    std::vector<unetpp::DsbSample> samples;
    std::vector<unetpp::SubmissionRow> rows;
    std::map<std::string, ImageSize> sizes;
    for (size_t i = 0; i < 3; ++i) {
        samples.push_back(unetpp::dsb_load_sample(stage, ids[i * ids.size() / 3]));
        const unetpp::DsbSample& s = samples.back();
        for (const auto& r : unetpp::submission_rows(s.id, s.labels)) rows.push_back(r);
        sizes[s.id] = {s.labels.height, s.labels.width};
    }
    const std::string path = temp_path("real");
    unetpp::submission_write(path, rows);
    auto images = unetpp::submission_read(path, sizes);
    for (const auto& s : samples) {
        INFO(s.id);
        REQUIRE(unetpp::metric_image(s.labels, images.at(s.id)).score == 1.0);
        REQUIRE(images.at(s.id).max_label() == unetpp::labels_count(s.labels));
    }
    std::remove(path.c_str());
}
