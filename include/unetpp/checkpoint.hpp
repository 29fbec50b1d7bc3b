#pragma once
// Checkpoints in the safetensors format: named tensors plus string metadata in one file that
// Python's `safetensors` opens as is.
//
// File layout (all integers little-endian):
//   bytes [0, 8)          u64 header length L
//   bytes [8, 8 + L)      JSON header, padded with spaces to a multiple of 8 bytes:
//                         {"__metadata__": {"key": "value", ...},
//                          "name": {"dtype": "F32", "shape": [K, C, R, S],
//                                   "data_offsets": [begin, end]}, ...}
//   bytes [8 + L, end)    the data section: each tensor's elements, row-major, little-endian;
//                         offsets are relative to the start of the data section, tensors lie
//                         back to back without gaps in the order they were given.
// Supported element types: F32 and F64. Ranks 0 to 4 (unetpp's Shape).
//
// A unetpp model checkpoint holds every parameter under its own name ("enc1.conv1.weight"),
// the optimizer state under "optim.*" (see optim/state.hpp), and metadata "unetpp.format" = "1",
// "unetpp.config" (the model's configuration string, compared on load) and the optimizer's
// "optim.*" keys.
//
// Writing goes to "<path>.tmp-<pid>", is flushed to disk, then renamed over `path`: a crash
// leaves either the old file or the new one, never half of one.
// Reading checks everything (header length, JSON, dtypes, shapes, offsets) before trusting it,
// and refuses anything malformed with an IoError naming the file: no byte string crashes it.
//
// Known gaps: the rename is atomic on POSIX; on Windows std::rename fails when `path` exists
// (remove once a MoveFileEx path is added). The directory entry is not fsynced after the rename,
// so a power cut right after saving may still show the old file (never a torn one).

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef _WIN32
#include <process.h>
#else
#include <unistd.h>
#endif

#include "unetpp/detail/json.hpp"
#include "unetpp/error.hpp"
#include "unetpp/optim/state.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

// The checkpoint format version written to metadata "unetpp.format".
constexpr const char* kCheckpointFormat = "1";

enum class Dtype { f32, f64 };

// One tensor of a checkpoint: where its bytes lie in Checkpoint::data.
struct CheckpointEntry {
    std::string name;
    Dtype dtype = Dtype::f32;
    Shape shape;
    uint64_t begin = 0;  // byte offsets into the data section
    uint64_t end = 0;
};

// A checkpoint read into memory: the tensors in header order, the metadata and the raw data.
struct Checkpoint {
    std::string source;                           // the file it came from, for messages
    std::vector<CheckpointEntry> entries;         // in the header's order
    std::map<std::string, std::string> metadata;  // "__metadata__"
    std::vector<unsigned char> data;              // the data section, little-endian

    // The entry called `name`, or nullptr.
    const CheckpointEntry* find(const std::string& name) const {
        for (const CheckpointEntry& e : entries) {
            if (e.name == name) return &e;
        }
        return nullptr;
    }
};

// Named views to save, in file order.
template <class T>
using NamedTensors = std::vector<std::pair<std::string, ConstTensorView<T>>>;

namespace detail {

// Larger headers are corrupt, not real; the same limit as the reference Rust reader.
constexpr uint64_t kMaxHeaderBytes = 100000000;

inline bool host_is_little_endian() {
    const uint16_t probe = 1;
    unsigned char first;
    std::memcpy(&first, &probe, 1);
    return first == 1;
}

template <class T>
constexpr Dtype dtype_of() {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "checkpoints store float (F32) or double (F64) tensors only.");
    return std::is_same<T, float>::value ? Dtype::f32 : Dtype::f64;
}
inline const char* dtype_name(Dtype d) { return d == Dtype::f32 ? "F32" : "F64"; }
inline uint64_t dtype_size(Dtype d) { return d == Dtype::f32 ? 4 : 8; }

// Appends `count` elements as little-endian bytes.
template <class T>
void append_le(std::vector<unsigned char>& out, const T* values, int64_t count) {
    const std::size_t at = out.size();
    out.resize(at + std::size_t(count) * sizeof(T));
    if (host_is_little_endian()) {
        if (count > 0) std::memcpy(out.data() + at, values, std::size_t(count) * sizeof(T));
        return;
    }
    for (int64_t i = 0; i < count; ++i) {
        unsigned char bytes[sizeof(T)];
        std::memcpy(bytes, &values[i], sizeof(T));
        for (std::size_t b = 0; b < sizeof(T); ++b) {
            out[at + std::size_t(i) * sizeof(T) + b] = bytes[sizeof(T) - 1 - b];
        }
    }
}

// Reads element i of little-endian `dtype` data starting at `p`, converted to T.
template <class T>
T read_le(const unsigned char* p, Dtype dtype, int64_t i) {
    const std::size_t size = dtype_size(dtype);
    unsigned char bytes[8];
    for (std::size_t b = 0; b < size; ++b) {
        bytes[b] = host_is_little_endian() ? p[i * size + b] : p[i * size + size - 1 - b];
    }
    if (dtype == Dtype::f32) {
        float f;
        std::memcpy(&f, bytes, 4);
        return T(f);
    }
    double d;
    std::memcpy(&d, bytes, 8);
    return T(d);
}

// The full header text for `tensors` (dtype T) and `metadata`, padded to a multiple of 8 bytes.
template <class T>
std::string checkpoint_header(const NamedTensors<T>& tensors,
                              const std::map<std::string, std::string>& metadata) {
    std::string h = "{";
    if (!metadata.empty()) {
        h += "\"__metadata__\":{";
        bool first = true;
        for (const auto& kv : metadata) {
            h += (first ? "" : ",") + json_quote(kv.first) + ":" + json_quote(kv.second);
            first = false;
        }
        h += "}";
    }
    uint64_t offset = 0;
    for (std::size_t k = 0; k < tensors.size(); ++k) {
        const ConstTensorView<T>& v = tensors[k].second;
        const uint64_t bytes = uint64_t(v.numel()) * sizeof(T);
        h += (k == 0 && metadata.empty() ? "" : ",") + json_quote(tensors[k].first) +
             ":{\"dtype\":\"" + dtype_name(dtype_of<T>()) + "\",\"shape\":[";
        for (int d = 0; d < v.rank(); ++d) h += (d ? "," : "") + std::to_string(v.dim(d));
        h += "],\"data_offsets\":[" + std::to_string(offset) + "," +
             std::to_string(offset + bytes) + "]}";
        offset += bytes;
    }
    h += "}";
    while (h.size() % 8 != 0) h += ' ';
    return h;
}

// Writes `bytes` to `path` through a temporary file renamed into place; throws IoError.
inline void write_file_atomic(const std::string& path, const std::vector<unsigned char>& bytes) {
#ifdef _WIN32
    const long pid = long(_getpid());
#else
    const long pid = long(getpid());
#endif
    const std::string tmp = path + ".tmp-" + std::to_string(pid);
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) {
        throw IoError(concat("checkpoint \"", path, "\": cannot create \"", tmp, "\": ",
                             std::strerror(errno), " (does the directory exist and is it ",
                             "writable?)"));
    }
    bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
    ok = std::fflush(f) == 0 && ok;
#ifndef _WIN32
    ok = ok && fsync(fileno(f)) == 0;
#endif
    const int saved_errno = errno;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) {
        std::remove(tmp.c_str());
        throw IoError(concat("checkpoint \"", path, "\": writing \"", tmp, "\" failed: ",
                             std::strerror(saved_errno), " (disk full?)"));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const int rename_errno = errno;
        std::remove(tmp.c_str());
        throw IoError(concat("checkpoint \"", path, "\": renaming \"", tmp, "\" over it failed: ",
                             std::strerror(rename_errno)));
    }
}

[[noreturn]] inline void checkpoint_fail(const std::string& source, const std::string& what) {
    throw IoError(concat("checkpoint \"", source, "\": ", what));
}

// Reads one tensor description of the header into `e`; throws IoError naming the tensor.
inline void checkpoint_parse_entry(const std::string& source, const std::string& name,
                                   const JsonValue& info, CheckpointEntry& e) {
    const std::string who = "tensor \"" + name + "\": ";
    if (info.kind != JsonValue::Kind::object) checkpoint_fail(source, who + "is not an object");
    const JsonValue *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& m : info.members) {
        if (m.first == "dtype") dtype = &m.second;
        if (m.first == "shape") shape = &m.second;
        if (m.first == "data_offsets") offsets = &m.second;
    }
    if (!dtype || !shape || !offsets) {
        checkpoint_fail(source, who + "needs \"dtype\", \"shape\" and \"data_offsets\"");
    }

    // 1. dtype
    if (dtype->kind != JsonValue::Kind::string) checkpoint_fail(source, who + "dtype not a string");
    if (dtype->text == "F32") {
        e.dtype = Dtype::f32;
    } else if (dtype->text == "F64") {
        e.dtype = Dtype::f64;
    } else {
        checkpoint_fail(source, who + "dtype \"" + dtype->text +
                                    "\" is not supported (unetpp reads F32 and F64)");
    }

    // 2. shape: at most 4 non-negative extents, element count without overflow
    if (shape->kind != JsonValue::Kind::array || shape->items.size() > std::size_t(kMaxRank)) {
        checkpoint_fail(source, who + "shape must be an array of at most 4 extents");
    }
    std::array<int64_t, kMaxRank> dims{};
    uint64_t count = 1;
    for (std::size_t d = 0; d < shape->items.size(); ++d) {
        uint64_t extent = 0;
        if (!json_to_u64(shape->items[d], extent) || extent > (uint64_t(1) << 40)) {
            checkpoint_fail(source, who + "shape extent " + std::to_string(d) +
                                        " is not a plausible non-negative integer");
        }
        if (extent != 0 && count > (uint64_t(1) << 60) / extent) {
            checkpoint_fail(source, who + "shape has too many elements");
        }
        count *= extent;
        dims[d] = int64_t(extent);
    }
    switch (shape->items.size()) {
        case 0: e.shape = Shape{}; break;
        case 1: e.shape = Shape{dims[0]}; break;
        case 2: e.shape = Shape{dims[0], dims[1]}; break;
        case 3: e.shape = Shape{dims[0], dims[1], dims[2]}; break;
        default: e.shape = Shape{dims[0], dims[1], dims[2], dims[3]};
    }

    // 3. offsets match the element count
    if (offsets->kind != JsonValue::Kind::array || offsets->items.size() != 2 ||
        !json_to_u64(offsets->items[0], e.begin) || !json_to_u64(offsets->items[1], e.end) ||
        e.begin > e.end) {
        checkpoint_fail(source, who + "data_offsets must be [begin, end] with begin <= end");
    }
    if (e.end - e.begin != count * dtype_size(e.dtype)) {
        checkpoint_fail(source, concat(who, "data_offsets span ", e.end - e.begin,
                                       " bytes but shape ", e.shape.str(), " of ",
                                       dtype_name(e.dtype), " needs ",
                                       count * dtype_size(e.dtype)));
    }
}

// Parses the header JSON into `ckpt` (entries and metadata) and checks that the entries tile a
// data section of `data_size` bytes exactly: no gap, no overlap, nothing out of range.
inline void checkpoint_parse_header(const char* header, std::size_t size, uint64_t data_size,
                                    Checkpoint& ckpt) {
    // 1. JSON object, opening with '{' as the reference reader requires
    if (size == 0 || header[0] != '{') {
        checkpoint_fail(ckpt.source, "header does not start with '{' (not a safetensors file)");
    }
    JsonValue root;
    try {
        root = json_parse(header, size);
    } catch (const Error& e) {
        checkpoint_fail(ckpt.source, std::string("header is not valid JSON: ") + e.what());
    }
    if (root.kind != JsonValue::Kind::object) checkpoint_fail(ckpt.source, "header not an object");

    // 2. metadata and tensor entries, names unique
    std::map<std::string, int> seen;
    for (const auto& m : root.members) {
        if (seen[m.first]++) checkpoint_fail(ckpt.source, "name \"" + m.first + "\" repeated");
        if (m.first == "__metadata__") {
            if (m.second.kind != JsonValue::Kind::object) {
                checkpoint_fail(ckpt.source, "__metadata__ is not an object");
            }
            for (const auto& kv : m.second.members) {
                if (kv.second.kind != JsonValue::Kind::string) {
                    checkpoint_fail(ckpt.source, "metadata \"" + kv.first + "\" not a string");
                }
                ckpt.metadata[kv.first] = kv.second.text;
            }
            continue;
        }
        CheckpointEntry e;
        e.name = m.first;
        checkpoint_parse_entry(ckpt.source, m.first, m.second, e);
        ckpt.entries.push_back(std::move(e));
    }

    // 3. entries sorted by offset tile [0, data_size)
    std::vector<const CheckpointEntry*> by_offset;
    for (const CheckpointEntry& e : ckpt.entries) by_offset.push_back(&e);
    std::stable_sort(by_offset.begin(), by_offset.end(),
                     [](const CheckpointEntry* a, const CheckpointEntry* b) {
                         return a->begin < b->begin || (a->begin == b->begin && a->end < b->end);
                     });
    uint64_t expected = 0;
    for (const CheckpointEntry* e : by_offset) {
        if (e->begin != expected) {
            checkpoint_fail(ckpt.source, concat("tensor \"", e->name, "\" starts at data byte ",
                                                e->begin, ", expected ", expected,
                                                " (overlapping tensors or a gap)"));
        }
        expected = e->end;
    }
    if (expected != data_size) {
        checkpoint_fail(ckpt.source, concat("tensors cover ", expected, " bytes of a ", data_size,
                                            "-byte data section (truncated or padded file)"));
    }
}

// Decodes entry `e` of `ckpt` into `out` (e.shape.numel() elements), converting to T.
template <class T>
void checkpoint_decode(const Checkpoint& ckpt, const CheckpointEntry& e, T* out) {
    const unsigned char* p = ckpt.data.data() + e.begin;
    const int64_t count = e.shape.numel();
    if (e.dtype == dtype_of<T>() && host_is_little_endian()) {
        if (count > 0) std::memcpy(out, p, std::size_t(count) * sizeof(T));
        return;
    }
    for (int64_t i = 0; i < count; ++i) out[i] = read_le<T>(p, e.dtype, i);
}

// The header length from the first 8 bytes, checked against the limit and the file size.
inline uint64_t checkpoint_header_length(const std::string& source, const unsigned char* first8,
                                         uint64_t file_size) {
    uint64_t n = 0;
    for (int b = 7; b >= 0; --b) n = (n << 8) | first8[b];
    if (n > kMaxHeaderBytes || n > file_size - 8) {
        checkpoint_fail(source, concat("header length ", n, " is absurd for a file of ",
                                       file_size, " bytes (not a safetensors file, or truncated)"));
    }
    return n;
}

}  // namespace detail

// Writes `tensors` and `metadata` to `path` in the safetensors format, atomically (see above).
// Requires: names unique, non-empty and not "__metadata__". Views may be strided.
// Throws IoError naming the file when it cannot be written; the old file then stays as it was.
template <class T>
void checkpoint_save(const std::string& path, const NamedTensors<T>& tensors,
                     const std::map<std::string, std::string>& metadata) {
    // 1. names
    std::map<std::string, int> seen;
    for (const auto& t : tensors) {
        if (t.first.empty() || t.first == "__metadata__" || seen[t.first]++) {
            throw Error(detail::concat("checkpoint_save \"", path, "\": tensor name \"", t.first,
                                       "\" is empty, reserved or repeated"));
        }
    }

    // 2. header, then data
    const std::string header = detail::checkpoint_header(tensors, metadata);
    std::vector<unsigned char> bytes;
    uint64_t n = header.size();
    for (int b = 0; b < 8; ++b) bytes.push_back(static_cast<unsigned char>(n >> (8 * b)));
    bytes.insert(bytes.end(), header.begin(), header.end());
    for (const auto& t : tensors) {
        if (t.second.is_contiguous()) {
            detail::append_le(bytes, t.second.data(), t.second.numel());
        } else {
            Tensor<T> copy(t.second.shape());
            copy.copy_from(t.second);
            detail::append_le(bytes, copy.data(), copy.numel());
        }
    }

    // 3. temporary file, renamed into place
    detail::write_file_atomic(path, bytes);
}

// Parses a complete safetensors file image held in memory; `source` names it in messages.
// Throws IoError for anything malformed; never reads outside `bytes`.
inline Checkpoint checkpoint_parse(const std::vector<unsigned char>& bytes,
                                   const std::string& source) {
    Checkpoint ckpt;
    ckpt.source = source;
    if (bytes.size() < 8) {
        detail::checkpoint_fail(source, detail::concat("file is ", bytes.size(),
                                                       " bytes, shorter than the 8-byte header "
                                                       "length (truncated?)"));
    }
    const uint64_t n = detail::checkpoint_header_length(source, bytes.data(), bytes.size());
    detail::checkpoint_parse_header(reinterpret_cast<const char*>(bytes.data() + 8),
                                    std::size_t(n), bytes.size() - 8 - n, ckpt);
    ckpt.data.assign(bytes.begin() + 8 + std::ptrdiff_t(n), bytes.end());
    return ckpt;
}

// Reads the safetensors file at `path`: header checked first, then the data section read.
// Throws IoError naming the file: missing or unreadable file, truncated file, absurd header
// length (over 10^8 bytes or past the end), invalid JSON, unsupported dtype, rank over 4, offsets
// that do not tile the data section exactly or disagree with shape and dtype.
inline Checkpoint checkpoint_read(const std::string& path) {
    // 1. open and size
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) {
        detail::checkpoint_fail(path, detail::concat("cannot open: ", std::strerror(errno)));
    }
    const std::streamoff end = in.tellg();
    if (end < 0) detail::checkpoint_fail(path, "cannot determine the file size");
    const uint64_t file_size = uint64_t(end);
    in.seekg(0);
    if (file_size < 8) {
        detail::checkpoint_fail(path, detail::concat("file is ", file_size,
                                                     " bytes, shorter than the 8-byte header "
                                                     "length (truncated?)"));
    }

    // 2. header
    Checkpoint ckpt;
    ckpt.source = path;
    unsigned char first8[8];
    in.read(reinterpret_cast<char*>(first8), 8);
    if (!in) detail::checkpoint_fail(path, "cannot read the header length");
    const uint64_t n = detail::checkpoint_header_length(path, first8, file_size);
    std::string header(std::size_t(n), '\0');
    in.read(&header[0], std::streamsize(n));
    if (!in) detail::checkpoint_fail(path, "cannot read the header (file changed while read?)");
    detail::checkpoint_parse_header(header.data(), header.size(), file_size - 8 - n, ckpt);

    // 3. data section
    ckpt.data.resize(std::size_t(file_size - 8 - n));
    if (!ckpt.data.empty()) {
        in.read(reinterpret_cast<char*>(ckpt.data.data()), std::streamsize(ckpt.data.size()));
        if (!in) detail::checkpoint_fail(path, "cannot read the data section");
    }
    return ckpt;
}

// The tensor `name` of `ckpt` as a Tensor<T>; F32 and F64 convert to T (exact when they match).
// Throws IoError naming the file when there is no such tensor.
template <class T>
Tensor<T> checkpoint_tensor(const Checkpoint& ckpt, const std::string& name) {
    const CheckpointEntry* e = ckpt.find(name);
    if (e == nullptr) detail::checkpoint_fail(ckpt.source, "has no tensor \"" + name + "\"");
    Tensor<T> t(e->shape);
    detail::checkpoint_decode(ckpt, *e, t.data());
    return t;
}

// Saves a model: every parameter in `params` (trainable or not) under its name, then the
// optimizer's tensors, with metadata = `metadata` + the optimizer's metadata +
// "unetpp.format" = kCheckpointFormat. Put the model's configuration string under
// "unetpp.config" in `metadata` so checkpoint_load_parameters can compare it.
// Throws Error on repeated names, IoError when the file cannot be written.
template <class T>
void checkpoint_save_model(const std::string& path, const ParameterList<T>& params,
                           const OptimizerState<T>& optim_state,
                           const std::map<std::string, std::string>& metadata) {
    NamedTensors<T> tensors;
    for (const Parameter<T>* p : params) tensors.emplace_back(p->name, p->value.view());
    for (const auto& t : optim_state.tensors) tensors.emplace_back(t.first, t.second.view());
    std::map<std::string, std::string> all = metadata;
    for (const auto& kv : optim_state.metadata) all[kv.first] = kv.second;
    all["unetpp.format"] = kCheckpointFormat;
    checkpoint_save(path, tensors, all);
}

// The same without optimizer state (for a model saved for inference).
template <class T>
void checkpoint_save_model(const std::string& path, const ParameterList<T>& params,
                           const std::map<std::string, std::string>& metadata) {
    checkpoint_save_model(path, params, OptimizerState<T>(), metadata);
}

// Copies the checkpoint's tensors into `params`, by name, converting F32/F64 to T.
// Requires: metadata "unetpp.format", if present, equals kCheckpointFormat; when
//           `expected_config` is non-empty, metadata "unetpp.config" equals it; every parameter
//           has a tensor of its exact shape; every tensor not named "optim.*" is a parameter.
// Guarantees: everything is checked FIRST; on any mismatch it throws IoError naming the file and
//           the first mismatch (missing tensor, extra tensor, shape, config) and no parameter
//           has changed. Gradients are not touched.
template <class T>
void checkpoint_load_parameters(const Checkpoint& ckpt, const ParameterList<T>& params,
                                const std::string& expected_config = std::string()) {
    // 1. format and architecture
    auto format = ckpt.metadata.find("unetpp.format");
    if (format != ckpt.metadata.end() && format->second != kCheckpointFormat) {
        detail::checkpoint_fail(ckpt.source, "format version \"" + format->second +
                                                 "\" is not this unetpp's \"" +
                                                 kCheckpointFormat + "\"");
    }
    if (!expected_config.empty()) {
        auto config = ckpt.metadata.find("unetpp.config");
        if (config == ckpt.metadata.end()) {
            detail::checkpoint_fail(ckpt.source, "has no \"unetpp.config\" metadata; the model "
                                                 "expects \"" + expected_config + "\"");
        }
        if (config->second != expected_config) {
            detail::checkpoint_fail(ckpt.source, "was saved for architecture \"" +
                                                     config->second + "\", the model is \"" +
                                                     expected_config + "\"");
        }
    }

    // 2. every parameter present with its shape, no stray tensors
    std::map<std::string, const Parameter<T>*> wanted;
    for (const Parameter<T>* p : params) {
        const CheckpointEntry* e = ckpt.find(p->name);
        if (e == nullptr) {
            detail::checkpoint_fail(ckpt.source, "has no tensor for parameter \"" + p->name +
                                                     "\" " + p->value.shape().str());
        }
        if (e->shape != p->value.shape()) {
            detail::checkpoint_fail(ckpt.source, "tensor \"" + p->name + "\" has shape " +
                                                     e->shape.str() + ", the model's parameter " +
                                                     "has shape " + p->value.shape().str());
        }
        wanted[p->name] = p;
    }
    for (const CheckpointEntry& e : ckpt.entries) {
        if (wanted.count(e.name) == 0 && e.name.compare(0, 6, "optim.") != 0) {
            detail::checkpoint_fail(ckpt.source, "tensor \"" + e.name + "\" " + e.shape.str() +
                                                     " matches no parameter of the model " +
                                                     "(different architecture?)");
        }
    }

    // 3. copy
    for (Parameter<T>* p : params) {
        detail::checkpoint_decode(ckpt, *ckpt.find(p->name), p->value.data());
    }
}

// The optimizer state stored in `ckpt`: every "optim.*" tensor (converted to T) and metadata key.
// Pass it to Adam::state_load / Sgd::state_load, which check it against the parameters.
template <class T>
OptimizerState<T> checkpoint_optimizer_state(const Checkpoint& ckpt) {
    OptimizerState<T> state;
    for (const CheckpointEntry& e : ckpt.entries) {
        if (e.name.compare(0, 6, "optim.") == 0) {
            state.tensors.emplace_back(e.name, checkpoint_tensor<T>(ckpt, e.name));
        }
    }
    for (const auto& kv : ckpt.metadata) {
        if (kv.first.compare(0, 6, "optim.") == 0) state.metadata[kv.first] = kv.second;
    }
    return state;
}

}  // namespace unetpp
