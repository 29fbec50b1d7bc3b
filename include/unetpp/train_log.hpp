#pragma once
// Training progress: one parseable line per step to a file, and a human line to stdout at most
// every few seconds.
//
// The file line is `step=120 epoch=3 loss=0.4132 lr=1.0e-04 grad_norm=2.31 img_s=48.2`, so a
// run can be plotted or compared with grep and awk alone. The human line is a progress bar for
// the current epoch. Writing the file is optional (empty path: none).

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "unetpp/error.hpp"

namespace unetpp {

// What one optimisation step reports.
struct TrainStepRecord {
    int64_t step = 0;
    int64_t epoch = 0;
    double loss = 0;
    double lr = 0;
    double grad_norm = 0;
    double images_per_second = 0;
};

class TrainLogger {
public:
    // `path`: the per-step log, appended to (a resumed run continues it); empty for none.
    // `verbose`: print the human progress line. `every_seconds`: least time between those lines.
    explicit TrainLogger(const std::string& path = "", bool verbose = true,
                         double every_seconds = 2.0)
        : verbose_(verbose), every_seconds_(every_seconds) {
        if (!path.empty()) {
            file_.open(path, std::ios::app);
            if (!file_) throw IoError(detail::concat("TrainLogger: cannot open ", path,
                                                     " for appending"));
        }
    }

    // Records one step; `done`/`total` give the progress through the current epoch.
    void step(const TrainStepRecord& r, int64_t done, int64_t total) {
        if (file_.is_open()) {
            char line[256];
            std::snprintf(line, sizeof line,
                          "step=%lld epoch=%lld loss=%.4f lr=%.1e grad_norm=%.3g img_s=%.1f\n",
                          static_cast<long long>(r.step), static_cast<long long>(r.epoch), r.loss,
                          r.lr, r.grad_norm, r.images_per_second);
            file_ << line;
            file_.flush();
        }
        smoothed_loss_ = seen_ ? 0.9 * smoothed_loss_ + 0.1 * r.loss : r.loss;
        seen_ = true;
        auto now = std::chrono::steady_clock::now();
        double since = std::chrono::duration<double>(now - last_print_).count();
        if (verbose_ && (since >= every_seconds_ || done == total)) {
            print_bar(r, done, total);
            last_print_ = now;
        }
    }

    // Ends the progress line of an epoch with a summary the caller supplies.
    void end_epoch(const std::string& summary) {
        if (verbose_) std::printf("\n%s\n", summary.c_str());
        std::fflush(stdout);
        seen_ = false;
    }

private:
    void print_bar(const TrainStepRecord& r, int64_t done, int64_t total) {
        constexpr int kWidth = 30;
        int filled = total > 0 ? static_cast<int>(kWidth * done / total) : 0;
        std::string bar(filled, '#');
        bar.resize(kWidth, '.');
        std::printf("\repoch %lld [%s] %lld/%lld loss %.4f  %.1f img/s  lr %.1e   ",
                    static_cast<long long>(r.epoch), bar.c_str(), static_cast<long long>(done),
                    static_cast<long long>(total), smoothed_loss_, r.images_per_second, r.lr);
        std::fflush(stdout);
    }

    std::ofstream file_;
    bool verbose_;
    double every_seconds_;
    double smoothed_loss_ = 0;
    bool seen_ = false;
    std::chrono::steady_clock::time_point last_print_{};
};

}  // namespace unetpp
