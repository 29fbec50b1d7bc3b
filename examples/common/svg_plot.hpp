#pragma once
// A small SVG line chart for training curves: one panel, any number of named series, axes with
// tick labels, and a legend. Written to a temporary name and renamed.

#include <unetpp/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace examples {

struct PlotSeries {
    std::string name;
    std::string colour;  // any SVG colour, e.g. "#1f77b4"
    std::vector<std::pair<double, double>> points;
};

struct PlotPanel {
    std::string title, x_label, y_label;
    std::vector<PlotSeries> series;
};

namespace detail {

inline std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, std::abs(v) >= 1000 || v == std::floor(v) ? "%.0f" : "%.3g", v);
    return buf;
}

// Draws one panel whose top-left corner is (ox, oy), of size w x h pixels.
inline void draw_panel(std::string& svg, const PlotPanel& p, double ox, double oy, double w,
                       double h) {
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto& s : p.series) {
        for (auto [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
        }
    }
    if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    const double left = ox + 60, right = ox + w - 20, top = oy + 30, bottom = oy + h - 45;
    auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (right - left); };
    auto py = [&](double y) { return bottom - (y - y0) / (y1 - y0) * (bottom - top); };
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "<text x='%.1f' y='%.1f' font-size='15' text-anchor='middle'>%s</text>\n"
                  "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='none' stroke='#444'/>\n",
                  (left + right) / 2, oy + 20, p.title.c_str(), left, top, right - left,
                  bottom - top);
    svg += buf;
    for (int t = 0; t <= 4; ++t) {
        double xv = x0 + (x1 - x0) * t / 4, yv = y0 + (y1 - y0) * t / 4;
        std::snprintf(buf, sizeof buf,
                      "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%s</text>\n"
                      "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%s</text>\n"
                      "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ddd'/>\n",
                      px(xv), bottom + 15, fmt(xv).c_str(), left - 5, py(yv) + 4,
                      fmt(yv).c_str(), left, py(yv), right, py(yv));
        svg += buf;
    }
    std::snprintf(buf, sizeof buf,
                  "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>%s</text>\n"
                  "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle' "
                  "transform='rotate(-90 %.1f %.1f)'>%s</text>\n",
                  (left + right) / 2, bottom + 35, p.x_label.c_str(), ox + 15, (top + bottom) / 2,
                  ox + 15, (top + bottom) / 2, p.y_label.c_str());
    svg += buf;
    int index = 0;
    for (const auto& s : p.series) {
        std::string path;
        for (auto [x, y] : s.points) {
            if (!std::isfinite(x) || !std::isfinite(y)) continue;
            std::snprintf(buf, sizeof buf, "%s%.1f,%.1f", path.empty() ? "M" : " L", px(x), py(y));
            path += buf;
        }
        svg += "<path d='" + path + "' fill='none' stroke='" + s.colour + "' stroke-width='1.5'/>\n";
        std::snprintf(buf, sizeof buf,
                      "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='%s' stroke-width='3'/>"
                      "<text x='%.1f' y='%.1f' font-size='12'>%s</text>\n",
                      right - 150, top + 15 + 16 * index, right - 130, top + 15 + 16 * index,
                      s.colour.c_str(), right - 125, top + 19 + 16 * index, s.name.c_str());
        svg += buf;
        ++index;
    }
}

}  // namespace detail

// Writes the panels side by side into one SVG file at `path`.
inline void plot_write_svg(const std::string& path, const std::vector<PlotPanel>& panels) {
    const double w = 480, h = 320;
    std::string svg = "<svg xmlns='http://www.w3.org/2000/svg' width='" +
                      std::to_string(int(w * panels.size())) + "' height='" +
                      std::to_string(int(h)) + "' font-family='sans-serif'>\n" +
                      "<rect width='100%' height='100%' fill='white'/>\n";
    for (size_t i = 0; i < panels.size(); ++i) detail::draw_panel(svg, panels[i], w * i, 0, w, h);
    svg += "</svg>\n";
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        out << svg;
        if (!out) throw unetpp::IoError("cannot write plot " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        throw unetpp::IoError("cannot rename " + tmp + " to " + path);
    }
}

}  // namespace examples
