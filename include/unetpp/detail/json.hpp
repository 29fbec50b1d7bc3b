#pragma once
// A tiny JSON reader and writer, enough for safetensors headers (RFC 8259 syntax).
//
// The reader accepts any byte string without crashing: it throws unetpp::Error with the byte
// offset of the first problem, limits nesting depth (so "[[[[..." cannot exhaust the stack), and
// keeps numbers as their literal text so integers convert exactly (json_to_u64). Object members
// keep file order. Strings are not checked for valid UTF-8; \u escapes (with surrogate pairs)
// are decoded to UTF-8.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "unetpp/error.hpp"

namespace unetpp {
namespace detail {

struct JsonValue {
    enum class Kind { null, boolean, number, string, array, object };
    Kind kind = Kind::null;
    bool boolean = false;
    std::string text;                                         // a string, or a number's literal
    std::vector<JsonValue> items;                             // array elements
    std::vector<std::pair<std::string, JsonValue>> members;   // object members, in file order
};

class JsonReader {
public:
    static constexpr int kMaxDepth = 64;

    JsonReader(const char* data, std::size_t size) : p_(data), begin_(data), end_(data + size) {}

    // Parses one value and requires only whitespace after it.
    JsonValue parse_document() {
        JsonValue v = parse_value(0);
        skip_space();
        if (p_ != end_) fail("unexpected data after the JSON value");
        return v;
    }

private:
    [[noreturn]] void fail(const char* what) const {
        throw Error(concat("JSON: ", what, " at byte ", p_ - begin_));
    }
    void skip_space() {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
    }
    bool eat(char c) {
        skip_space();
        if (p_ != end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }
    void expect(char c, const char* what) {
        if (!eat(c)) fail(what);
    }
    void expect_word(const char* word) {
        for (const char* w = word; *w; ++w, ++p_) {
            if (p_ == end_ || *p_ != *w) fail("invalid literal");
        }
    }

    JsonValue parse_value(int depth) {
        if (depth > kMaxDepth) fail("nesting too deep");
        skip_space();
        if (p_ == end_) fail("unexpected end of input");
        JsonValue v;
        switch (*p_) {
            case '{': parse_object(v, depth); break;
            case '[': parse_array(v, depth); break;
            case '"':
                v.kind = JsonValue::Kind::string;
                v.text = parse_string();
                break;
            case 't':
            case 'f':
                v.kind = JsonValue::Kind::boolean;
                v.boolean = *p_ == 't';
                expect_word(v.boolean ? "true" : "false");
                break;
            case 'n':
                expect_word("null");
                break;
            default:
                v.kind = JsonValue::Kind::number;
                v.text = parse_number();
        }
        return v;
    }

    void parse_object(JsonValue& v, int depth) {
        v.kind = JsonValue::Kind::object;
        ++p_;
        if (eat('}')) return;
        do {
            skip_space();
            if (p_ == end_ || *p_ != '"') fail("expected a member name");
            std::string key = parse_string();
            expect(':', "expected ':' after a member name");
            v.members.emplace_back(std::move(key), parse_value(depth + 1));
        } while (eat(','));
        expect('}', "expected ',' or '}' in an object");
    }

    void parse_array(JsonValue& v, int depth) {
        v.kind = JsonValue::Kind::array;
        ++p_;
        if (eat(']')) return;
        do {
            v.items.push_back(parse_value(depth + 1));
        } while (eat(','));
        expect(']', "expected ',' or ']' in an array");
    }

    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    std::string parse_number() {
        const char* start = p_;
        auto digits = [&] {
            const char* d = p_;
            while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
            if (p_ == d) fail("invalid number");
        };
        if (p_ != end_ && *p_ == '-') ++p_;
        if (p_ != end_ && *p_ == '0') {
            ++p_;
        } else {
            digits();
        }
        if (p_ != end_ && *p_ == '.') {
            ++p_;
            digits();
        }
        if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
            ++p_;
            if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
            digits();
        }
        return std::string(start, p_);
    }

    unsigned hex4() {
        unsigned u = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            if (p_ == end_) fail("unterminated \\u escape");
            char c = *p_;
            unsigned d = (c >= '0' && c <= '9')   ? unsigned(c - '0')
                         : (c >= 'a' && c <= 'f') ? unsigned(c - 'a' + 10)
                         : (c >= 'A' && c <= 'F') ? unsigned(c - 'A' + 10)
                                                  : 16u;
            if (d == 16u) fail("invalid hex digit in a \\u escape");
            u = u * 16 + d;
        }
        return u;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }

    std::string parse_string() {
        ++p_;  // opening quote
        std::string out;
        while (true) {
            if (p_ == end_) fail("unterminated string");
            unsigned char c = static_cast<unsigned char>(*p_++);
            if (c == '"') return out;
            if (c < 0x20) fail("control character inside a string");
            if (c != '\\') {
                out += char(c);
                continue;
            }
            if (p_ == end_) fail("unterminated escape");
            char e = *p_++;
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate");
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
                            fail("high surrogate without a low surrogate");
                        }
                        p_ += 2;
                        unsigned low = hex4();
                        if (low < 0xDC00 || low > 0xDFFF) fail("invalid low surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("invalid escape");
            }
        }
    }

    const char* p_;
    const char* begin_;
    const char* end_;
};

// Parses a complete JSON document; throws Error naming the byte offset of the first problem.
inline JsonValue json_parse(const char* data, std::size_t size) {
    return JsonReader(data, size).parse_document();
}

// True and `out` set when `v` is a non-negative integer literal that fits in 63 bits.
inline bool json_to_u64(const JsonValue& v, uint64_t& out) {
    if (v.kind != JsonValue::Kind::number || v.text.empty() || v.text.size() > 18) return false;
    uint64_t x = 0;
    for (char c : v.text) {
        if (c < '0' || c > '9') return false;
        x = x * 10 + uint64_t(c - '0');
    }
    out = x;
    return true;
}

// `s` as a quoted JSON string; control characters, quotes and backslashes are escaped.
inline std::string json_quote(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out = "\"";
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

}  // namespace detail
}  // namespace unetpp
