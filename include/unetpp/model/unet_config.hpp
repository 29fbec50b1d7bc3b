#pragma once
// UNetConfig: everything that fixes a U-Net's architecture and initialisation, with a key=value
// text form that checkpoints store so a model can only be loaded into the same architecture.
//
// Widths double per level: level l (1..depth) has base_width * 2^(l-1) channels and the
// bottleneck base_width * 2^depth. UNetConfig::unet16() is the Keras tutorial's model
// (in 3, out 1, depth 4, base 16: 16, 32, 64, 128, 256 channels; 1,941,105 parameters).

#include <cstdint>
#include <sstream>
#include <string>

#include "unetpp/error.hpp"

namespace unetpp {

// How the decoder doubles the resolution.
enum class UpsampleKind {
    transposed_conv,  // 2x2 stride-2 transposed convolution (the paper's "up-convolution")
    bilinear_conv,    // bilinear 2x, then a 3x3 convolution that halves the channels
};

// The nonlinearity after every 3x3 convolution (and its batch norm).
enum class ActivationKind { relu, elu };

struct UNetConfig {
    int64_t in_channels = 3;
    int64_t out_channels = 1;  // one logit map per class; sigmoid in the loss / prediction
    int64_t depth = 4;         // number of 2x2 poolings
    int64_t base_width = 16;   // channels of level 1
    bool batch_norm = false;   // BatchNorm2d after every 3x3 convolution, before the activation
    double dropout = 0.0;      // dropout rate between the two convolutions of every level (0: off)
    UpsampleKind upsample = UpsampleKind::transposed_conv;
    ActivationKind activation = ActivationKind::relu;
    uint64_t seed = 42;        // weight initialisation and dropout masks

    // The Keras tutorial's U-Net: in 3, out 1, depth 4, base 16, no BN, ReLU, transposed conv.
    static UNetConfig unet16() { return UNetConfig{}; }

    // Channels of level l in 1..depth, and of the bottleneck at l = depth + 1.
    int64_t width(int64_t level) const { return base_width << (level - 1); }

    // Throws Error naming the field, the value given and the allowed range.
    void validate() const {
        auto bad = [](const char* field, auto value, const char* need) {
            throw Error(detail::concat("UNetConfig: ", field, " = ", value, " is invalid (", need,
                                       ")"));
        };
        if (in_channels < 1) bad("in_channels", in_channels, "need at least 1");
        if (out_channels < 1) bad("out_channels", out_channels, "need at least 1");
        if (depth < 1 || depth > 8) bad("depth", depth, "need 1 to 8 poolings");
        if (base_width < 1 || (base_width << depth) > (int64_t(1) << 16)) {
            bad("base_width", base_width, "need 1 <= base_width * 2^depth <= 65536");
        }
        if (!(dropout >= 0 && dropout < 1)) bad("dropout", dropout, "need 0 <= dropout < 1");
    }

    // Whether `other` has the same parameters with the same meaning (seed and dropout may differ).
    bool same_architecture(const UNetConfig& other) const {
        return in_channels == other.in_channels && out_channels == other.out_channels &&
               depth == other.depth && base_width == other.base_width &&
               batch_norm == other.batch_norm && upsample == other.upsample &&
               activation == other.activation;
    }

    // "in_channels=3 out_channels=1 depth=4 base_width=16 batch_norm=0 dropout=0
    //  upsample=transposed_conv activation=relu seed=42" (one line, single spaces).
    std::string to_string() const {
        std::ostringstream os;
        os.precision(17);
        os << "in_channels=" << in_channels << " out_channels=" << out_channels
           << " depth=" << depth << " base_width=" << base_width
           << " batch_norm=" << (batch_norm ? 1 : 0) << " dropout=" << dropout
           << " upsample=" << (upsample == UpsampleKind::transposed_conv ? "transposed_conv"
                                                                         : "bilinear_conv")
           << " activation=" << (activation == ActivationKind::relu ? "relu" : "elu")
           << " seed=" << seed;
        return os.str();
    }

    // Parses the to_string() form: key=value pairs separated by spaces, any order; absent keys
    // keep their defaults. Throws Error naming an unknown key or a bad value; validates the result.
    static UNetConfig parse(const std::string& text) {
        UNetConfig c;
        std::istringstream in(text);
        std::string item;
        while (in >> item) {
            auto eq = item.find('=');
            if (eq == std::string::npos) {
                throw Error(detail::concat("UNetConfig::parse: \"", item,
                                           "\" is not key=value (in \"", text, "\")"));
            }
            c.set(item.substr(0, eq), item.substr(eq + 1));
        }
        c.validate();
        return c;
    }

private:
    void set(const std::string& key, const std::string& value) {
        try {
            if (key == "in_channels") in_channels = std::stoll(value);
            else if (key == "out_channels") out_channels = std::stoll(value);
            else if (key == "depth") depth = std::stoll(value);
            else if (key == "base_width") base_width = std::stoll(value);
            else if (key == "batch_norm") batch_norm = parse_bool(value);
            else if (key == "dropout") dropout = std::stod(value);
            else if (key == "seed") seed = std::stoull(value);
            else if (key == "upsample") upsample = parse_upsample(value);
            else if (key == "activation") activation = parse_activation(value);
            else throw Error(detail::concat("UNetConfig::parse: unknown key \"", key, "\""));
        } catch (const std::logic_error&) {
            throw Error(detail::concat("UNetConfig::parse: bad value \"", value, "\" for ", key));
        }
    }
    static bool parse_bool(const std::string& v) {
        if (v == "1" || v == "true") return true;
        if (v == "0" || v == "false") return false;
        throw Error(detail::concat("UNetConfig::parse: batch_norm must be 0/1/true/false, got \"",
                                   v, "\""));
    }
    static UpsampleKind parse_upsample(const std::string& v) {
        if (v == "transposed_conv") return UpsampleKind::transposed_conv;
        if (v == "bilinear_conv") return UpsampleKind::bilinear_conv;
        throw Error(detail::concat("UNetConfig::parse: upsample must be transposed_conv or "
                                   "bilinear_conv, got \"", v, "\""));
    }
    static ActivationKind parse_activation(const std::string& v) {
        if (v == "relu") return ActivationKind::relu;
        if (v == "elu") return ActivationKind::elu;
        throw Error(detail::concat("UNetConfig::parse: activation must be relu or elu, got \"", v,
                                   "\""));
    }
};

}  // namespace unetpp
