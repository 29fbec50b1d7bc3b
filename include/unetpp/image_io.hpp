#pragma once
// Reading and writing images: PNG (and whatever else stb_image reads) to and from Tensor<float>.
//
// Images are Tensor<float> of shape {C, H, W} with values in [0, 1]: C is 1 (gray), 2 (gray and
// alpha), 3 (RGB) or 4 (RGBA). 8-bit files are scaled by 1/255, 16-bit PNGs by 1/65535.
// Decoding goes through stb_image (Debian's libstb-dev: the shared libstb provides the
// implementation, so this header never defines STB_IMAGE_IMPLEMENTATION). Writing 8-bit PNG goes
// through stb_image_write; 16-bit PNG, which stb cannot write, has a small encoder of its own that
// stores the data uncompressed (deflate "stored" blocks): correct and simple, but large files.
//
// Every write goes to a temporary name beside the target and is renamed into place, so a reader
// never sees a half-written file. Failures throw IoError naming the file and stb's reason.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "unetpp/error.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// How many channels image_read returns.
enum class ImageChannels {
    keep,  // as stored in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    gray,  // 1 channel: stb's luma (77 R + 150 G + 29 B) / 256, alpha dropped
    rgb,   // 3 channels: gray is replicated, alpha dropped
    rgba,  // 4 channels: alpha is 1 where the file has none
};

// What a file holds, without decoding its pixels.
struct ImageInfo {
    int64_t height = 0;
    int64_t width = 0;
    int channels = 0;  // as stored: 1, 2, 3 or 4
    int bits = 8;      // 8 or 16 (16 only for 16-bit PNG)
};

// A binary image (a nucleus mask): one byte per pixel, 0 or 1, rows contiguous.
struct BinaryImage {
    int64_t height = 0;
    int64_t width = 0;
    std::vector<uint8_t> pixels;
};

namespace detail {

inline int image_channels_count(ImageChannels channels, int stored) {
    switch (channels) {
        case ImageChannels::gray: return 1;
        case ImageChannels::rgb: return 3;
        case ImageChannels::rgba: return 4;
        default: return stored;
    }
}

inline const char* stb_reason() {
    const char* r = stbi_failure_reason();
    return r != nullptr ? r : "unknown reason";
}

inline void image_require_exists(const std::string& what, const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw IoError(concat(what, ": cannot read \"", path, "\": no such file"));
    }
}

// A temporary name beside `path`, unique among the threads of this process.
inline std::string image_temp_name(const std::string& path) {
    static std::atomic<uint64_t> counter{0};
    uint64_t tid = std::hash<std::thread::id>()(std::this_thread::get_id());
    return concat(path, ".tmp-", tid % 1000003, "-", counter++);
}

// Renames `temp` to `path`, removing `temp` and throwing IoError if that fails.
inline void image_commit(const std::string& what, const std::string& temp,
                         const std::string& path) {
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    if (ec) {
        std::filesystem::remove(temp, ec);
        throw IoError(concat(what, ": cannot rename the temporary file to \"", path, "\": ",
                             ec.message()));
    }
}

// Converts a [0,1] float to an n-bit integer, clamping and rounding to nearest.
inline uint32_t image_quantize(float v, uint32_t max_value) {
    float c = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    if (!(c == c)) c = 0.0f;  // NaN writes as 0
    return static_cast<uint32_t>(c * float(max_value) + 0.5f);
}

// CRC-32 (ISO 3309, as PNG chunks use it), bitwise with a table built once.
inline uint32_t png_crc32(const uint8_t* data, size_t n, uint32_t crc = 0xffffffffu) {
    static const std::vector<uint32_t> table = [] {
        std::vector<uint32_t> t(256);
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

inline void png_put_u32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

inline void png_put_chunk(std::vector<uint8_t>& out, const char* type,
                          const std::vector<uint8_t>& data) {
    png_put_u32(out, uint32_t(data.size()));
    size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    uint32_t crc = png_crc32(out.data() + start, out.size() - start) ^ 0xffffffffu;
    png_put_u32(out, crc);
}

// A zlib stream (RFC 1950) holding `raw` in deflate stored blocks (RFC 1951, BTYPE 00).
inline std::vector<uint8_t> zlib_store(const std::vector<uint8_t>& raw) {
    std::vector<uint8_t> z = {0x78, 0x01};
    size_t pos = 0;
    do {
        size_t len = std::min<size_t>(65535, raw.size() - pos);
        bool last = pos + len == raw.size();
        z.push_back(last ? 1 : 0);
        z.push_back(uint8_t(len & 0xff));
        z.push_back(uint8_t(len >> 8));
        z.push_back(uint8_t(~len & 0xff));
        z.push_back(uint8_t((~len >> 8) & 0xff));
        z.insert(z.end(), raw.begin() + pos, raw.begin() + pos + len);
        pos += len;
    } while (pos < raw.size());
    uint32_t a = 1, b = 0;  // Adler-32 of the uncompressed data
    for (uint8_t v : raw) {
        a = (a + v) % 65521;
        b = (b + a) % 65521;
    }
    png_put_u32(z, (b << 16) | a);
    return z;
}

}  // namespace detail

// Reads the header of an image file. Throws IoError naming the file when it is missing or not an
// image stb understands.
inline ImageInfo image_info(const std::string& path) {
    detail::image_require_exists("image_info", path);
    int w = 0, h = 0, c = 0;
    if (!stbi_info(path.c_str(), &w, &h, &c)) {
        throw IoError(detail::concat("image_info: cannot read \"", path, "\": ",
                                     detail::stb_reason()));
    }
    ImageInfo info;
    info.height = h;
    info.width = w;
    info.channels = c;
    info.bits = stbi_is_16_bit(path.c_str()) ? 16 : 8;
    return info;
}

// Reads an image into a {C, H, W} tensor with values in [0, 1] (8-bit / 255, 16-bit / 65535).
// `channels` picks C (see ImageChannels). Throws IoError naming the file and stb's reason when
// the file is missing, truncated or not an image.
inline Tensor<float> image_read(const std::string& path,
                                ImageChannels channels = ImageChannels::keep) {
    detail::image_require_exists("image_read", path);
    const char* file = path.c_str();
    bool is16 = stbi_is_16_bit(file) != 0;

    // 1. decode interleaved H x W x C samples
    int w = 0, h = 0, stored = 0;
    int want = channels == ImageChannels::keep ? 0 : detail::image_channels_count(channels, 0);
    void* pixels = is16 ? static_cast<void*>(stbi_load_16(file, &w, &h, &stored, want))
                        : static_cast<void*>(stbi_load(file, &w, &h, &stored, want));
    if (pixels == nullptr) {
        throw IoError(detail::concat("image_read: cannot decode \"", path, "\": ",
                                     detail::stb_reason()));
    }
    int c = detail::image_channels_count(channels, stored);

    // 2. de-interleave into planes and scale to [0, 1]
    Tensor<float> image({c, h, w});
    int64_t plane = int64_t(h) * w;
    float scale = is16 ? 1.0f / 65535.0f : 1.0f / 255.0f;
    for (int64_t p = 0; p < plane; ++p) {
        for (int k = 0; k < c; ++k) {
            float v = is16 ? float(static_cast<const uint16_t*>(pixels)[p * c + k])
                           : float(static_cast<const uint8_t*>(pixels)[p * c + k]);
            image[k * plane + p] = v * scale;
        }
    }
    stbi_image_free(pixels);
    return image;
}

// Reads a mask image as binary: a pixel is 1 where its gray value is nonzero, else 0. Any bit
// depth and channel count is accepted (colour is reduced to stb's gray first). Throws IoError
// naming the file when it cannot be read.
inline BinaryImage mask_read(const std::string& path) {
    detail::image_require_exists("mask_read", path);
    int w = 0, h = 0, stored = 0;
    uint8_t* pixels = stbi_load(path.c_str(), &w, &h, &stored, 1);
    if (pixels == nullptr) {
        throw IoError(detail::concat("mask_read: cannot decode \"", path, "\": ",
                                     detail::stb_reason()));
    }
    BinaryImage mask;
    mask.height = h;
    mask.width = w;
    mask.pixels.resize(size_t(h) * size_t(w));
    for (size_t i = 0; i < mask.pixels.size(); ++i) mask.pixels[i] = pixels[i] != 0 ? 1 : 0;
    stbi_image_free(pixels);
    return mask;
}

// Writes interleaved 8-bit samples (H x W x channels, rows contiguous; channels 1 to 4) as PNG.
// Requires pixels.size() == height * width * channels. Writes a temporary file, then renames it.
inline void image_write_png_u8(const std::string& path, const std::vector<uint8_t>& pixels,
                               int64_t height, int64_t width, int channels) {
    if (channels < 1 || channels > 4 || height <= 0 || width <= 0 ||
        int64_t(pixels.size()) != height * width * channels) {
        throw ShapeError(detail::concat("image_write_png_u8 \"", path, "\": ", pixels.size(),
                                        " bytes for ", height, "x", width, "x", channels,
                                        " (need 1 to 4 channels and height*width*channels bytes)"));
    }
    std::string temp = detail::image_temp_name(path);
    int ok = stbi_write_png(temp.c_str(), int(width), int(height), channels, pixels.data(),
                            int(width * channels));
    if (!ok) {
        std::error_code ec;
        std::filesystem::remove(temp, ec);
        throw IoError(detail::concat("image_write_png_u8: cannot write \"", path,
                                     "\" (stb_image_write failed: check the folder exists and "
                                     "is writable)"));
    }
    detail::image_commit("image_write_png_u8", temp, path);
}

// Writes an RGB buffer (H x W x 3 bytes) as an 8-bit RGB PNG.
inline void image_write_png_rgb(const std::string& path, const std::vector<uint8_t>& rgb,
                                int64_t height, int64_t width) {
    image_write_png_u8(path, rgb, height, width, 3);
}

namespace detail {
inline void image_check_writable(const char* what, const std::string& path,
                                 const Tensor<float>& image) {
    if (image.rank() != 3 || image.dim(0) < 1 || image.dim(0) > 4 || image.dim(1) == 0 ||
        image.dim(2) == 0) {
        throw ShapeError(concat(what, " \"", path, "\": expected a {C, H, W} image with C in 1..4 ",
                                "and H, W > 0, got shape ", image.shape().str()));
    }
}
}  // namespace detail

// Writes a {C, H, W} image (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; values clamped to [0, 1],
// NaN as 0) as an 8-bit PNG.
inline void image_write_png(const std::string& path, const Tensor<float>& image) {
    detail::image_check_writable("image_write_png", path, image);
    int64_t c = image.dim(0), plane = image.dim(1) * image.dim(2);
    std::vector<uint8_t> bytes(static_cast<size_t>(plane * c));
    for (int64_t p = 0; p < plane; ++p) {
        for (int64_t k = 0; k < c; ++k) {
            bytes[p * c + k] = uint8_t(detail::image_quantize(image[k * plane + p], 255));
        }
    }
    image_write_png_u8(path, bytes, image.dim(1), image.dim(2), int(c));
}

// Writes a {C, H, W} image (C = 1, 2, 3 or 4; values clamped to [0, 1]) as a 16-bit PNG, for
// results that need more than 256 levels. The file is uncompressed (see the header comment).
inline void image_write_png16(const std::string& path, const Tensor<float>& image) {
    detail::image_check_writable("image_write_png16", path, image);
    int64_t c = image.dim(0), h = image.dim(1), w = image.dim(2), plane = h * w;
    static const uint8_t kColorType[5] = {0, 0, 4, 2, 6};  // by channel count

    // 1. scanlines: filter byte 0 (None), then big-endian 16-bit samples
    std::vector<uint8_t> raw;
    raw.reserve(size_t(h * (1 + w * c * 2)));
    for (int64_t y = 0; y < h; ++y) {
        raw.push_back(0);
        for (int64_t x = 0; x < w; ++x) {
            for (int64_t k = 0; k < c; ++k) {
                uint32_t v = detail::image_quantize(image[k * plane + y * w + x], 65535);
                raw.push_back(uint8_t(v >> 8));
                raw.push_back(uint8_t(v & 0xff));
            }
        }
    }

    // 2. signature, IHDR, IDAT, IEND
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<uint8_t> ihdr;
    detail::png_put_u32(ihdr, uint32_t(w));
    detail::png_put_u32(ihdr, uint32_t(h));
    ihdr.insert(ihdr.end(), {16, kColorType[c], 0, 0, 0});
    detail::png_put_chunk(png, "IHDR", ihdr);
    detail::png_put_chunk(png, "IDAT", detail::zlib_store(raw));
    detail::png_put_chunk(png, "IEND", {});

    // 3. write to a temporary name and rename into place
    std::string temp = detail::image_temp_name(path);
    std::FILE* f = std::fopen(temp.c_str(), "wb");
    bool ok = f != nullptr && std::fwrite(png.data(), 1, png.size(), f) == png.size();
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
    if (!ok) {
        std::error_code ec;
        std::filesystem::remove(temp, ec);
        throw IoError(detail::concat("image_write_png16: cannot write \"", path,
                                     "\" (check the folder exists and is writable)"));
    }
    detail::image_commit("image_write_png16", temp, path);
}

}  // namespace unetpp
