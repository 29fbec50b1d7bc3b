#pragma once
// Command-line flags for the example programs: `--name value`, `--name=value`, boolean `--name`,
// and `--config FILE` holding `name = value` lines (# starts a comment). Flags on the command
// line override the config file. Unknown flags and malformed values are errors that name them.

#include <unetpp/error.hpp>
#include <unetpp/parallel.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace examples {

class Flags {
public:
    // Declares a flag with its default (as text) and one line of help.
    Flags& define(const std::string& name, const std::string& fallback, const std::string& help) {
        values_[name] = fallback;
        help_.push_back({name, fallback, help});
        return *this;
    }

    // Parses argv; positional arguments are kept in order. Throws unetpp::Error on a bad flag.
    void parse(int argc, char** argv) {
        std::map<std::string, std::string> given;
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "-h" || arg == "--help") {
                help_requested_ = true;
                continue;
            }
            if (arg.rfind("--", 0) != 0) {
                positional_.push_back(arg);
                continue;
            }
            std::string name = arg.substr(2), value;
            auto eq = name.find('=');
            if (eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            } else if (name != "config" && is_boolean(name)) {
                value = "true";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                throw unetpp::Error("flag --" + name + " needs a value");
            }
            if (name != "config" && !values_.count(name)) {
                throw unetpp::Error("unknown flag --" + name + " (see --help)");
            }
            given[name] = value;
        }
        if (given.count("config")) read_config(given["config"]);
        for (auto& [name, value] : given) {
            if (name != "config") values_[name] = value;
        }
    }

    bool help_requested() const { return help_requested_; }
    const std::vector<std::string>& positional() const { return positional_; }

    std::string str(const std::string& name) const { return values_.at(name); }
    bool boolean(const std::string& name) const {
        const std::string& v = values_.at(name);
        if (v == "true" || v == "1" || v == "yes") return true;
        if (v == "false" || v == "0" || v == "no" || v.empty()) return false;
        throw unetpp::Error("flag --" + name + ": expected true or false, got '" + v + "'");
    }
    long long integer(const std::string& name) const {
        const std::string& v = values_.at(name);
        try {
            size_t used = 0;
            long long x = std::stoll(v, &used);
            if (used == v.size()) return x;
        } catch (const std::exception&) {
        }
        throw unetpp::Error("flag --" + name + ": expected an integer, got '" + v + "'");
    }
    double real(const std::string& name) const {
        const std::string& v = values_.at(name);
        try {
            size_t used = 0;
            double x = std::stod(v, &used);
            if (used == v.size()) return x;
        } catch (const std::exception&) {
        }
        throw unetpp::Error("flag --" + name + ": expected a number, got '" + v + "'");
    }

    void print_help(const char* usage) const {
        std::printf("%s\n\nflags (or put `name = value` lines in a file given by --config):\n",
                    usage);
        for (const auto& h : help_) {
            std::printf("  --%-18s %s (default: %s)\n", h.name.c_str(), h.help.c_str(),
                        h.fallback.empty() ? "none" : h.fallback.c_str());
        }
    }

private:
    struct Help {
        std::string name, fallback, help;
    };

    bool is_boolean(const std::string& name) const {
        auto it = values_.find(name);
        return it != values_.end() && (it->second == "true" || it->second == "false");
    }

    void read_config(const std::string& path) {
        std::ifstream in(path);
        if (!in) throw unetpp::IoError("cannot read config file " + path);
        std::string line;
        int number = 0;
        while (std::getline(in, line)) {
            ++number;
            line = line.substr(0, line.find('#'));
            auto eq = line.find('=');
            std::string name = trim(line.substr(0, eq));
            if (name.empty()) continue;
            if (eq == std::string::npos) {
                throw unetpp::Error(path + ":" + std::to_string(number) +
                                    ": expected `name = value`, got '" + line + "'");
            }
            if (!values_.count(name)) {
                throw unetpp::Error(path + ":" + std::to_string(number) + ": unknown setting '" +
                                    name + "'");
            }
            values_[name] = trim(line.substr(eq + 1));
        }
    }

    static std::string trim(const std::string& s) {
        auto b = s.find_first_not_of(" \t\r");
        auto e = s.find_last_not_of(" \t\r");
        return b == std::string::npos ? "" : s.substr(b, e - b + 1);
    }

    std::map<std::string, std::string> values_;
    std::vector<Help> help_;
    std::vector<std::string> positional_;
    bool help_requested_ = false;
};

// The body every program's main() shares: parses argv into `flags` (already defined, with a
// "threads" flag), prints --help, refuses positional arguments, sets the thread count, then
// returns run(flags). Any exception becomes "<program>: error: <what>" and exit status 1.
template <class Run>
int program_main(const char* program, const char* usage, Flags& flags, int argc, char** argv,
                 Run&& run) {
    try {
        flags.parse(argc, argv);
        if (flags.help_requested()) {
            flags.print_help(usage);
            return 0;
        }
        if (!flags.positional().empty()) {
            throw unetpp::Error("unexpected argument \"" + flags.positional()[0] +
                                "\" (see --help)");
        }
        unetpp::set_num_threads(int(flags.integer("threads")));
        return run(flags);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", program, e.what());
        return 1;
    }
}

}  // namespace examples
