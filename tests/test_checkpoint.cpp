// safetensors checkpoints: exact bytes, bit-exact round trips, refusals, atomic writes, model
// and optimizer state save/load.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <unetpp/checkpoint.hpp>
#include <unetpp/optim/adam.hpp>
#include <unetpp/random.hpp>
#include <vector>

using unetpp::Checkpoint;
using unetpp::IoError;
using unetpp::NamedTensors;
using unetpp::Parameter;
using unetpp::ParameterList;
using unetpp::Tensor;
using Bytes = std::vector<unsigned char>;
namespace fs = std::filesystem;

namespace {

// A fresh scratch directory per test case, removed afterwards.
struct ScratchDir {
    fs::path dir;
    ScratchDir() {
        static int counter = 0;
        dir = fs::temp_directory_path() /
              ("unetpp_test_checkpoint_" + std::to_string(::getpid()) + "_" +
               std::to_string(counter++));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string file(const std::string& name) const { return (dir / name).string(); }
};

Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// 8-byte little-endian length, then the header text, then the data bytes.
Bytes file_image(const std::string& header, const Bytes& data) {
    Bytes b;
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<unsigned char>(header.size() >> (8 * i)));
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

template <class T>
bool bit_equal(const Tensor<T>& a, const Tensor<T>& b) {
    return a.shape() == b.shape() &&
           (a.numel() == 0 || std::memcmp(a.data(), b.data(), a.numel() * sizeof(T)) == 0);
}

// A small model with the parameter kinds a U-Net has.
struct SmallModel {
    Parameter<float> conv_w{"enc1.conv1.weight", {3, 2, 3, 3}};
    Parameter<float> conv_b{"enc1.conv1.bias", {3}};
    Parameter<float> bn_mean{"enc1.bn1.running_mean", {3}, false};

    explicit SmallModel(uint64_t seed) {
        unetpp::Rng rng(seed);
        unetpp::init_uniform(conv_w.value, rng, -1.0, 1.0);
        unetpp::init_uniform(conv_b.value, rng, -1.0, 1.0);
        unetpp::init_uniform(bn_mean.value, rng, -1.0, 1.0);
    }
    ParameterList<float> params() { return {&conv_w, &conv_b, &bn_mean}; }
};

void fill_grads(SmallModel& m) {
    for (Parameter<float>* p : m.params()) {
        if (!p->trainable) continue;
        for (int64_t i = 0; i < p->value.numel(); ++i) p->grad[i] = p->value[i] - 0.25f;
    }
}

}  // namespace

TEST_CASE("checkpoint_save writes the hand-computed safetensors bytes", "[checkpoint]") {
    ScratchDir scratch;
    Tensor<float> w({2});
    w[0] = 1.0f;
    w[1] = -2.0f;
    const std::string path = scratch.file("tiny.safetensors");
    unetpp::checkpoint_save<float>(path, {{"w", w.view()}}, {{"k", "v"}});

    // 79 header bytes padded with one space to 80 = 0x50; 1.0f = 0x3F800000, -2.0f = 0xC0000000.
    const std::string header =
        "{\"__metadata__\":{\"k\":\"v\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
        "\"data_offsets\":[0,8]}} ";
    Bytes expected = {0x50, 0, 0, 0, 0, 0, 0, 0};
    for (char c : header) expected.push_back(static_cast<unsigned char>(c));
    for (unsigned char b : {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0}) expected.push_back(b);
    REQUIRE(read_bytes(path) == expected);
}

TEST_CASE("a hand-built file with F32, F64, a scalar and metadata parses to its values",
          "[checkpoint]") {
    // Keys out of offset order, unknown extra fields, escapes and whitespace are all legal.
    const std::string header =
        "{ \"b\\u00e9\" : {\"dtype\":\"F64\", \"shape\":[], \"data_offsets\":[8, 16]},\n"
        "  \"a\": {\"shape\":[1, 2], \"dtype\":\"F32\", \"data_offsets\":[0, 8], \"x\":null},\n"
        "  \"__metadata__\": {\"unetpp.config\": \"width=\\\"8\\\"\"} }   ";
    Bytes data = {0x00, 0x00, 0x40, 0x40,                            // 3.0f
                  0x00, 0x00, 0xC0, 0xBF,                            // -1.5f
                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F};   // 1.0 (double)
    Checkpoint ckpt = unetpp::checkpoint_parse(file_image(header, data), "hand-built");
    REQUIRE(ckpt.entries.size() == 2);
    REQUIRE(ckpt.entries[0].name == "b\xC3\xA9");
    REQUIRE(ckpt.entries[1].name == "a");
    REQUIRE(ckpt.metadata.at("unetpp.config") == "width=\"8\"");
    Tensor<float> a = unetpp::checkpoint_tensor<float>(ckpt, "a");
    REQUIRE(a.shape() == unetpp::Shape{1, 2});
    REQUIRE(a[0] == 3.0f);
    REQUIRE(a[1] == -1.5f);
    Tensor<double> b = unetpp::checkpoint_tensor<double>(ckpt, "b\xC3\xA9");
    REQUIRE(b.rank() == 0);
    REQUIRE(b[0] == 1.0);
    REQUIRE(unetpp::checkpoint_tensor<double>(ckpt, "a")[1] == -1.5);  // F32 read as double
}

TEMPLATE_TEST_CASE("round trip is bit-exact for NaN, inf, denormals and signed zero",
                   "[checkpoint]", float, double) {
    using T = TestType;
    using Limits = std::numeric_limits<T>;
    ScratchDir scratch;
    Tensor<T> special({9});
    const T values[] = {Limits::quiet_NaN(), -Limits::quiet_NaN(), Limits::infinity(),
                        -Limits::infinity(), Limits::denorm_min(), -Limits::denorm_min(),
                        T(-0.0), Limits::max(), Limits::lowest()};
    for (int i = 0; i < 9; ++i) special[i] = values[i];
    Tensor<T> big({2, 3, 7, 17}), scalar(unetpp::Shape{}), empty({0, 3});
    unetpp::Rng rng(9);
    unetpp::init_normal(big, rng, 0.0, 10.0);
    scalar[0] = T(42.5);
    Tensor<T> wide({4, 5});
    unetpp::init_uniform(wide, rng, -1.0, 1.0);

    const std::string path = scratch.file("special.safetensors");
    NamedTensors<T> tensors = {{"special", special.view()},
                               {"big", big.view()},
                               {"scalar", scalar.view()},
                               {"empty", empty.view()},
                               {"strided", unetpp::ConstTensorView<T>(wide.view())}};
    unetpp::checkpoint_save<T>(path, tensors, {});
    Checkpoint ckpt = unetpp::checkpoint_read(path);
    REQUIRE(ckpt.metadata.empty());
    REQUIRE(ckpt.entries.size() == 5);
    REQUIRE(ckpt.entries[1].name == "big");
    REQUIRE(bit_equal(unetpp::checkpoint_tensor<T>(ckpt, "special"), special));
    REQUIRE(bit_equal(unetpp::checkpoint_tensor<T>(ckpt, "big"), big));
    REQUIRE(bit_equal(unetpp::checkpoint_tensor<T>(ckpt, "scalar"), scalar));
    REQUIRE(unetpp::checkpoint_tensor<T>(ckpt, "empty").shape() == unetpp::Shape{0, 3});
    REQUIRE(bit_equal(unetpp::checkpoint_tensor<T>(ckpt, "strided"), wide));
}

TEST_CASE("strided views are saved as their logical, contiguous contents", "[checkpoint]") {
    ScratchDir scratch;
    Tensor<float> x({2, 4, 3, 5});
    for (int64_t i = 0; i < x.numel(); ++i) x[i] = float(i);
    const std::string path = scratch.file("strided.safetensors");
    unetpp::checkpoint_save<float>(path, {{"mid", x.channels(1, 2)}}, {});
    Tensor<float> expected(x.channels(1, 2).shape());
    expected.copy_from(x.channels(1, 2));
    Checkpoint ckpt = unetpp::checkpoint_read(path);
    REQUIRE(bit_equal(unetpp::checkpoint_tensor<float>(ckpt, "mid"), expected));
}

TEST_CASE("malformed files are refused with an IoError naming the file", "[checkpoint][errors]") {
    const std::string good_header =
        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    const Bytes data(8, 0);
    auto refuse = [](const Bytes& bytes, const std::string& why) {
        REQUIRE_THROWS_AS(unetpp::checkpoint_parse(bytes, "bad.st"), IoError);
        REQUIRE_THROWS_WITH(unetpp::checkpoint_parse(bytes, "bad.st"),
                            Catch::Contains("bad.st") && Catch::Contains(why));
    };
    REQUIRE_NOTHROW(unetpp::checkpoint_parse(file_image(good_header, data), "good.st"));

    SECTION("missing file") {
        REQUIRE_THROWS_WITH(unetpp::checkpoint_read("/nonexistent/dir/model.safetensors"),
                            Catch::Contains("/nonexistent/dir/model.safetensors") &&
                                Catch::Contains("cannot open"));
    }
    SECTION("shorter than the length field") { refuse(Bytes{1, 2, 3}, "shorter"); }
    SECTION("header length past the end or over 100 MB") {
        Bytes b = file_image(good_header, data);
        b[0] = 0xFF;
        refuse(b, "absurd");
        Bytes huge = {0, 0, 0, 0x10, 0, 0, 0, 0};  // 256 MiB
        refuse(huge, "absurd");
    }
    SECTION("data section truncated or padded") {
        refuse(file_image(good_header, Bytes(7, 0)), "truncated");
        refuse(file_image(good_header, Bytes(9, 0)), "padded");
    }
    SECTION("invalid JSON") {
        refuse(file_image("{\"w\":{\"dtype\":\"F32\",", data), "JSON");
        refuse(file_image("[1, 2]", data), "start with '{'");
        refuse(file_image("{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}", data),
               "deep");
        refuse(file_image("{\"w\": tru}", data), "JSON");
    }
    SECTION("unknown or unsupported dtype") {
        refuse(file_image("{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
                          data),
               "F16");
        refuse(file_image("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                          data),
               "not supported");
    }
    SECTION("offsets that disagree with the shape, overlap or leave a gap") {
        refuse(file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                          data),
               "needs 12");
        refuse(file_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                          data),
               "overlapping");
        refuse(file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                          data),
               "gap");
        refuse(file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
                          data),
               "begin <= end");
    }
    SECTION("rank above 4, repeated names, non-string metadata") {
        refuse(file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],"
                          "\"data_offsets\":[0,8]}}",
                          data),
               "at most 4");
        refuse(file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}",
                          data),
               "repeated");
        refuse(file_image("{\"__metadata__\":{\"k\":1},"
                          "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                          data),
               "not a string");
    }
}

TEST_CASE("every truncation and many byte flips are refused or load, never crash",
          "[checkpoint][errors][fuzz]") {
    ScratchDir scratch;
    Tensor<float> a({2, 3}), b({3});
    for (int64_t i = 0; i < a.numel(); ++i) a[i] = float(i) - 2.5f;
    for (int64_t i = 0; i < b.numel(); ++i) b[i] = float(i) * 0.5f;
    const std::string path = scratch.file("fuzz.safetensors");
    unetpp::checkpoint_save<float>(path, {{"a", a.view()}, {"b", b.view()}},
                                   {{"unetpp.config", "c"}});
    const Bytes good = read_bytes(path);

    // Truncated at every length: always refused, through memory and through a file.
    for (std::size_t len = 0; len < good.size(); ++len) {
        Bytes cut(good.begin(), good.begin() + std::ptrdiff_t(len));
        CAPTURE(len);
        REQUIRE_THROWS_AS(unetpp::checkpoint_parse(cut, "cut"), IoError);
        if (len % 16 == 0) {
            write_bytes(path, cut);
            REQUIRE_THROWS_AS(unetpp::checkpoint_read(path), IoError);
        }
    }
    // Each byte flipped three ways: refused with IoError, or parsed into a consistent checkpoint.
    int loaded = 0, refused = 0;
    for (std::size_t at = 0; at < good.size(); ++at) {
        for (unsigned char mask : {0x01, 0x80, 0xFF}) {
            Bytes bad = good;
            bad[at] ^= mask;
            CAPTURE(at, int(mask));
            try {
                Checkpoint ckpt = unetpp::checkpoint_parse(bad, "flip");
                for (const auto& e : ckpt.entries) {
                    Tensor<float> t = unetpp::checkpoint_tensor<float>(ckpt, e.name);
                    REQUIRE(t.numel() * 4 == int64_t(e.end - e.begin));
                }
                ++loaded;
            } catch (const IoError&) {
                ++refused;
            }
        }
    }
    REQUIRE(loaded > 0);   // flips inside the data are just other values
    REQUIRE(refused > 0);  // flips in the length or the header are caught
}

TEST_CASE("a saved model and adam state load back identically", "[checkpoint][model]") {
    ScratchDir scratch;
    SmallModel model(1);
    unetpp::Adam<float> adam;
    fill_grads(model);
    adam.step(model.params());
    const std::string path = scratch.file("model.safetensors");
    unetpp::checkpoint_save_model(path, model.params(), adam.state_save(),
                                  {{"unetpp.config", "unet depth=2 width=3"}});

    Checkpoint ckpt = unetpp::checkpoint_read(path);
    REQUIRE(ckpt.metadata.at("unetpp.format") == "1");
    REQUIRE(ckpt.metadata.at("optim.kind") == "adam");
    REQUIRE(ckpt.find("optim.adam.m.enc1.conv1.weight") != nullptr);
    SmallModel loaded(2);
    unetpp::checkpoint_load_parameters(ckpt, loaded.params(), "unet depth=2 width=3");
    REQUIRE(bit_equal(loaded.conv_w.value, model.conv_w.value));
    REQUIRE(bit_equal(loaded.conv_b.value, model.conv_b.value));
    REQUIRE(bit_equal(loaded.bn_mean.value, model.bn_mean.value));
    unetpp::Adam<float> adam2;
    adam2.state_load(unetpp::checkpoint_optimizer_state<float>(ckpt), loaded.params());
    REQUIRE(adam2.step_count() == 1);
}

TEST_CASE("training resumed from a checkpoint file is bit-identical to an unbroken run",
          "[checkpoint][model][optim]") {
    ScratchDir scratch;
    SmallModel straight(4);
    unetpp::Adam<float> adam_straight(unetpp::adamw_spec(0.01, 0.1));
    for (int s = 0; s < 10; ++s) {
        fill_grads(straight);
        adam_straight.step(straight.params());
    }

    const std::string path = scratch.file("resume.safetensors");
    {
        SmallModel first(4);
        unetpp::Adam<float> adam(unetpp::adamw_spec(0.01, 0.1));
        for (int s = 0; s < 5; ++s) {
            fill_grads(first);
            adam.step(first.params());
        }
        unetpp::checkpoint_save_model(path, first.params(), adam.state_save(), {});
    }
    SmallModel resumed(99);
    unetpp::Adam<float> adam(unetpp::adamw_spec(0.01, 0.1));
    Checkpoint ckpt = unetpp::checkpoint_read(path);
    unetpp::checkpoint_load_parameters(ckpt, resumed.params());
    adam.state_load(unetpp::checkpoint_optimizer_state<float>(ckpt), resumed.params());
    for (int s = 5; s < 10; ++s) {
        fill_grads(resumed);
        adam.step(resumed.params());
    }
    REQUIRE(bit_equal(resumed.conv_w.value, straight.conv_w.value));
    REQUIRE(bit_equal(resumed.conv_b.value, straight.conv_b.value));
}

TEST_CASE("a checkpoint of another architecture is refused and the model stays untouched",
          "[checkpoint][model][errors]") {
    ScratchDir scratch;
    SmallModel model(1);
    const std::string path = scratch.file("arch.safetensors");
    unetpp::checkpoint_save_model(path, model.params(), {{"unetpp.config", "depth=2"}});
    Checkpoint ckpt = unetpp::checkpoint_read(path);

    SmallModel target(7);
    const Tensor<float> w0 = target.conv_w.value, b0 = target.conv_b.value;
    auto untouched = [&] {
        REQUIRE(bit_equal(target.conv_w.value, w0));
        REQUIRE(bit_equal(target.conv_b.value, b0));
    };
    SECTION("config metadata differs") {
        REQUIRE_THROWS_WITH(unetpp::checkpoint_load_parameters(ckpt, target.params(), "depth=3"),
                            Catch::Contains(path) && Catch::Contains("depth=2") &&
                                Catch::Contains("depth=3"));
        untouched();
    }
    SECTION("a parameter is missing from the file") {
        Parameter<float> extra("dec1.conv1.weight", {3});
        auto params = target.params();
        params.push_back(&extra);
        REQUIRE_THROWS_WITH(unetpp::checkpoint_load_parameters(ckpt, params),
                            Catch::Contains("dec1.conv1.weight"));
        untouched();
    }
    SECTION("the file has a tensor the model lacks") {
        ParameterList<float> params = {&target.conv_w, &target.conv_b};
        REQUIRE_THROWS_WITH(unetpp::checkpoint_load_parameters(ckpt, params),
                            Catch::Contains("enc1.bn1.running_mean") &&
                                Catch::Contains("matches no parameter"));
        untouched();
    }
    SECTION("a shape differs") {
        Parameter<float> wide("enc1.bn1.running_mean", {4}, false);
        ParameterList<float> params = {&target.conv_w, &target.conv_b, &wide};
        REQUIRE_THROWS_WITH(unetpp::checkpoint_load_parameters(ckpt, params),
                            Catch::Contains("[3]") && Catch::Contains("[4]"));
        untouched();
    }
}

TEST_CASE("saving is atomic: no temporary file remains and failures keep the old file",
          "[checkpoint][atomic]") {
    ScratchDir scratch;
    Tensor<float> x({3});
    x.fill(1.0f);
    const std::string path = scratch.file("atomic.safetensors");
    unetpp::checkpoint_save<float>(path, {{"x", x.view()}}, {});
    x.fill(2.0f);
    unetpp::checkpoint_save<float>(path, {{"x", x.view()}}, {});  // overwrite
    REQUIRE(unetpp::checkpoint_tensor<float>(unetpp::checkpoint_read(path), "x")[0] == 2.0f);
    int files = 0;
    for (const auto& entry : fs::directory_iterator(scratch.dir)) {
        ++files;
        REQUIRE(entry.path().filename().string().find(".tmp-") == std::string::npos);
    }
    REQUIRE(files == 1);

    const std::string missing_dir = scratch.file("no/such/dir/model.safetensors");
    REQUIRE_THROWS_WITH(unetpp::checkpoint_save<float>(missing_dir, {{"x", x.view()}}, {}),
                        Catch::Contains(missing_dir));
    REQUIRE_THROWS_AS(unetpp::checkpoint_save<float>(path, {{"x", x.view()}, {"x", x.view()}},
                                                     {}),
                      unetpp::Error);
    REQUIRE(unetpp::checkpoint_tensor<float>(unetpp::checkpoint_read(path), "x")[0] == 2.0f);
}
