// Connected-component labelling and relabelling.
#include <catch2/catch.hpp>

#include <unetpp/post/connected_components.hpp>

using unetpp::Connectivity;
using unetpp::LabelMap;

namespace {

LabelMap from_rows(const std::vector<std::vector<int32_t>>& rows) {
    LabelMap m(int64_t(rows.size()), int64_t(rows[0].size()));
    for (int64_t y = 0; y < m.height; ++y)
        for (int64_t x = 0; x < m.width; ++x) m.at(y, x) = rows[y][x];
    return m;
}

}  // namespace

TEST_CASE("a diagonal is one component under 8-connectivity and two under 4", "[components]") {
    LabelMap mask = from_rows({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}});
    LabelMap eight = unetpp::connected_components_label(mask, Connectivity::Eight);
    LabelMap four = unetpp::connected_components_label(mask, Connectivity::Four);
    REQUIRE(eight.labels == std::vector<int32_t>{1, 0, 0, 0, 1, 0, 0, 0, 1});
    REQUIRE(four.labels == std::vector<int32_t>{1, 0, 0, 0, 2, 0, 0, 0, 3});
}

TEST_CASE("components are numbered in raster order of their first pixel", "[components]") {
    // The U-shape's first pixel (0,0) comes first although its right arm starts at (0,4);
    // the dot at (0,2) is second, the blob at (3,1) third.
    LabelMap mask = from_rows({{1, 0, 7, 0, 1},
                               {1, 0, 0, 0, 1},
                               {1, 1, 1, 1, 1},
                               {0, 0, 0, 0, 0},
                               {0, 5, 5, 0, 0}});
    LabelMap out = unetpp::connected_components_label(mask, Connectivity::Four);
    REQUIRE(out.labels == std::vector<int32_t>{1, 0, 2, 0, 1,  //
                                               1, 0, 0, 0, 1,  //
                                               1, 1, 1, 1, 1,  //
                                               0, 0, 0, 0, 0,  //
                                               0, 3, 3, 0, 0});
}

TEST_CASE("components of empty and full masks", "[components]") {
    LabelMap empty(3, 7);
    REQUIRE(unetpp::connected_components_label(empty).max_label() == 0);
    LabelMap full(17, 1);
    for (int32_t& v : full.labels) v = 1;
    LabelMap out = unetpp::connected_components_label(full, Connectivity::Four);
    for (int32_t v : out.labels) REQUIRE(v == 1);
    LabelMap none(0, 0);
    REQUIRE(unetpp::connected_components_label(none).size() == 0);
}

TEST_CASE("relabel renumbers labels consecutively in raster order", "[components]") {
    LabelMap labels = from_rows({{0, 9, 9}, {4, 0, 9}, {4, 0, 2}});
    LabelMap out = unetpp::labels_relabel(labels);
    REQUIRE(out.labels == std::vector<int32_t>{0, 1, 1, 2, 0, 1, 2, 0, 3});
    REQUIRE(unetpp::labels_count(labels) == 3);
}
