// PNG reading and writing through stb, and the 16-bit PNG encoder.
#include <catch2/catch.hpp>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <unetpp/image_io.hpp>
#include <unetpp/random.hpp>

namespace fs = std::filesystem;
using unetpp::Tensor;

namespace {

// A fresh folder under the system temp dir, removed at scope exit.
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string& name) {
        unetpp::Rng rng(std::hash<std::string>()(name) ^ uint64_t(::time(nullptr)));
        std::string leaf = "unetpp_" + name + "_" + std::to_string(rng.next_u64());
        path = fs::temp_directory_path() / leaf;
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

// An image whose samples are k / levels for pseudo-random k, so they survive quantisation.
Tensor<float> levels_image(int64_t c, int64_t h, int64_t w, uint32_t levels, uint64_t seed) {
    unetpp::Rng rng(seed);
    Tensor<float> x({c, h, w});
    for (auto& v : x) v = float(rng.below(levels + 1)) / float(levels);
    return x;
}

// Reading back an 8-bit value k/255 gives k * (1/255) in float: one rounding away.
constexpr float kByteTolerance = 1e-6f;

}  // namespace

TEST_CASE("8-bit gray, gray+alpha, RGB and RGBA PNGs read back exactly", "[image_io]") {
    TempDir dir("image_io_8bit");
    for (int64_t c : {1, 2, 3, 4}) {
        SECTION("channels " + std::to_string(c)) {
            Tensor<float> x = levels_image(c, 7, 17, 255, 10 + uint64_t(c));
            std::string path = dir.file("x.png");
            unetpp::image_write_png(path, x);
            unetpp::ImageInfo info = unetpp::image_info(path);
            REQUIRE(info.channels == c);
            REQUIRE(info.bits == 8);
            REQUIRE(info.height == 7);
            REQUIRE(info.width == 17);
            Tensor<float> y = unetpp::image_read(path);
            REQUIRE(y.shape() == x.shape());
            REQUIRE(unetpp::tensor_max_abs_diff(x, y) <= kByteTolerance);
        }
    }
}

TEST_CASE("16-bit PNGs written by image_write_png16 read back at 1/65535 steps", "[image_io]") {
    TempDir dir("image_io_16bit");
    for (int64_t c : {1, 3, 4}) {
        Tensor<float> x = levels_image(c, 3, 33, 65535, 20 + uint64_t(c));
        std::string path = dir.file("x16.png");
        unetpp::image_write_png16(path, x);
        REQUIRE(unetpp::image_info(path).bits == 16);
        Tensor<float> y = unetpp::image_read(path);
        REQUIRE(y.shape() == x.shape());
        REQUIRE(unetpp::tensor_max_abs_diff(x, y) <= 1e-7f);
    }
}

TEST_CASE("a large 16-bit image spans several stored deflate blocks", "[image_io]") {
    TempDir dir("image_io_16bit_large");
    Tensor<float> x = levels_image(1, 130, 300, 65535, 3);  // 130 * 601 bytes > 65535
    std::string path = dir.file("big.png");
    unetpp::image_write_png16(path, x);
    REQUIRE(unetpp::tensor_max_abs_diff(x, unetpp::image_read(path)) <= 1e-7f);
}

TEST_CASE("forced channel counts drop alpha and convert gray and colour", "[image_io]") {
    TempDir dir("image_io_channels");
    Tensor<float> rgba = levels_image(4, 5, 3, 255, 4);
    std::string path = dir.file("rgba.png");
    unetpp::image_write_png(path, rgba);

    Tensor<float> rgb = unetpp::image_read(path, unetpp::ImageChannels::rgb);
    REQUIRE(rgb.shape() == unetpp::Shape{3, 5, 3});
    for (int64_t i = 0; i < rgb.numel(); ++i) REQUIRE(std::abs(rgb[i] - rgba[i]) <= kByteTolerance);

    Tensor<float> gray_src({1, 5, 3});
    for (int64_t i = 0; i < 15; ++i) gray_src[i] = float(i * 17) / 255.0f;
    std::string gpath = dir.file("gray.png");
    unetpp::image_write_png(gpath, gray_src);
    Tensor<float> as_rgb = unetpp::image_read(gpath, unetpp::ImageChannels::rgb);
    Tensor<float> as_rgba = unetpp::image_read(gpath, unetpp::ImageChannels::rgba);
    for (int64_t k = 0; k < 3; ++k) {
        for (int64_t p = 0; p < 15; ++p) {
            REQUIRE(std::abs(as_rgb[k * 15 + p] - gray_src[p]) <= kByteTolerance);
        }
    }
    for (int64_t p = 0; p < 15; ++p) REQUIRE(as_rgba[3 * 15 + p] == 1.0f);

    // stb's gray of an RGB pixel (v, v, v) is v
    std::string cpath = dir.file("grayish_rgb.png");
    unetpp::image_write_png(cpath, as_rgb);
    Tensor<float> back = unetpp::image_read(cpath, unetpp::ImageChannels::gray);
    REQUIRE(unetpp::tensor_max_abs_diff(back, gray_src) <= kByteTolerance);
}

TEST_CASE("an RGB byte buffer writes as an RGB PNG", "[image_io]") {
    TempDir dir("image_io_rgb_buffer");
    std::vector<uint8_t> rgb(2 * 3 * 3);
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(i * 13);
    std::string path = dir.file("buf.png");
    unetpp::image_write_png_rgb(path, rgb, 2, 3);
    Tensor<float> x = unetpp::image_read(path);
    REQUIRE(x.shape() == unetpp::Shape{3, 2, 3});
    REQUIRE(x.at({1, 0, 2}) == float(rgb[(0 * 3 + 2) * 3 + 1]) / 255.0f);
    REQUIRE_THROWS_AS(unetpp::image_write_png_rgb(path, rgb, 3, 3), unetpp::ShapeError);
}

TEST_CASE("masks read as binary: any nonzero gray is 1", "[image_io]") {
    TempDir dir("image_io_mask");
    Tensor<float> m({1, 1, 4});
    m[1] = 1.0f;
    m[2] = 7.0f / 255.0f;
    std::string path = dir.file("m.png");
    unetpp::image_write_png(path, m);
    unetpp::BinaryImage b = unetpp::mask_read(path);
    REQUIRE(b.height == 1);
    REQUIRE(b.width == 4);
    REQUIRE(b.pixels == std::vector<uint8_t>{0, 1, 1, 0});
}

TEST_CASE("writes leave no temporary file behind", "[image_io]") {
    TempDir dir("image_io_temp");
    unetpp::image_write_png(dir.file("a.png"), levels_image(3, 4, 4, 255, 1));
    unetpp::image_write_png16(dir.file("b.png"), levels_image(1, 4, 4, 255, 1));
    unetpp::image_write_png(dir.file("a.png"), levels_image(3, 4, 4, 255, 2));  // overwrite
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir.path)) {
        ++files;
        REQUIRE(e.path().extension() == ".png");
    }
    REQUIRE(files == 2);
}

TEST_CASE("unreadable or missing files throw IoError naming the file", "[image_io][errors]") {
    TempDir dir("image_io_errors");
    std::string missing = dir.file("missing.png");
    std::string garbage = dir.file("garbage.png");
    std::ofstream(garbage) << "this is not a PNG";

    auto message_of = [](auto&& fn) -> std::string {
        try {
            fn();
        } catch (const unetpp::IoError& e) {
            return e.what();
        }
        return "";
    };
    for (const std::string& path : {missing, garbage}) {
        CHECK_THAT(message_of([&] { unetpp::image_read(path); }), Catch::Contains(path));
        CHECK_THAT(message_of([&] { unetpp::mask_read(path); }), Catch::Contains(path));
        CHECK_THAT(message_of([&] { unetpp::image_info(path); }), Catch::Contains(path));
    }
    // stb's own reason is passed on
    CHECK_THAT(message_of([&] { unetpp::image_read(garbage); }), Catch::Contains("unknown image"));
    std::string no_dir = dir.file("no/such/dir/x.png");
    CHECK_THAT(message_of([&] { unetpp::image_write_png(no_dir, levels_image(1, 2, 2, 255, 1)); }),
               Catch::Contains(no_dir));
    REQUIRE_THROWS_AS(unetpp::image_write_png(dir.file("bad.png"), Tensor<float>({5, 2, 2})),
                      unetpp::ShapeError);
}
