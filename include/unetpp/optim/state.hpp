#pragma once
// Optimizer state as named tensors and string metadata, so a checkpoint can store it beside the
// model and training can resume bit-identically.
//
// Names follow "optim.<kind>.<slot>.<parameter name>", e.g. "optim.adam.m.enc1.conv1.weight";
// scalars such as the step count live in metadata ("optim.adam.step" -> "1200") so they stay
// exact whatever the tensor element type. Every optimizer keeps one slot per trainable parameter,
// frozen ones included (so unfreezing later finds its state), and none for non-trainable ones.

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "unetpp/error.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

template <class T>
struct OptimizerState {
    std::vector<std::pair<std::string, Tensor<T>>> tensors;  // in parameter order
    std::map<std::string, std::string> metadata;             // keys start with "optim."
};

namespace detail {

// One optimizer slot set per trainable parameter: its name and its state tensors.
template <class T>
struct OptimSlot {
    std::string name;
    std::vector<Tensor<T>> buffers;  // e.g. Adam's m and v
};

// Throws Error naming `who` unless the trainable parameters of `params` are, in order, the ones
// `slots` were built for (same names and shapes).
template <class T>
void optim_check_same_params(const char* who, const std::vector<OptimSlot<T>>& slots,
                             const ParameterList<T>& params) {
    std::size_t k = 0;
    for (const Parameter<T>* p : params) {
        if (!p->trainable) continue;
        if (k >= slots.size()) {
            throw Error(concat(who, ": parameter \"", p->name, "\" was not in the list this ",
                               "optimizer was first used with (", slots.size(),
                               " trainable parameters); use one optimizer per parameter list"));
        }
        const OptimSlot<T>& s = slots[k++];
        if (s.name != p->name || s.buffers.front().shape() != p->value.shape()) {
            throw Error(concat(who, ": trainable parameter ", k - 1, " is \"", p->name, "\" ",
                               p->value.shape().str(), " but the optimizer state holds \"",
                               s.name, "\" ", s.buffers.front().shape().str(),
                               "; use one optimizer per parameter list"));
        }
        if (p->grad.shape() != p->value.shape()) {
            throw ShapeError(concat(who, ": parameter \"", p->name, "\" has gradient shape ",
                                    p->grad.shape().str(), " but value shape ",
                                    p->value.shape().str()));
        }
    }
    if (k != slots.size()) {
        throw Error(concat(who, ": ", k, " trainable parameters given, the optimizer state holds ",
                           slots.size(), "; use one optimizer per parameter list"));
    }
}

// Zero-filled slots with `count` buffers shaped like each trainable parameter.
template <class T>
std::vector<OptimSlot<T>> optim_make_slots(const ParameterList<T>& params, int count) {
    std::vector<OptimSlot<T>> slots;
    for (const Parameter<T>* p : params) {
        if (!p->trainable) continue;
        OptimSlot<T> s;
        s.name = p->name;
        for (int b = 0; b < count; ++b) s.buffers.emplace_back(p->value.shape());
        slots.push_back(std::move(s));
    }
    return slots;
}

// Exports slots as "<prefix><buffer name>.<parameter name>" tensors, parameter-major.
template <class T>
void optim_export(const std::string& prefix, const std::vector<std::string>& buffer_names,
                  const std::vector<OptimSlot<T>>& slots, OptimizerState<T>& out) {
    for (const OptimSlot<T>& s : slots) {
        for (std::size_t b = 0; b < buffer_names.size(); ++b) {
            out.tensors.emplace_back(prefix + buffer_names[b] + "." + s.name, s.buffers[b]);
        }
    }
}

// Parses a non-negative decimal step count stored under `key`; throws Error otherwise.
template <class T>
int64_t optim_read_step(const char* who, const OptimizerState<T>& state, const std::string& key) {
    auto it = state.metadata.find(key);
    if (it == state.metadata.end()) {
        throw Error(concat(who, ": optimizer state has no \"", key, "\" entry (not saved by this ",
                           "optimizer kind?)"));
    }
    const std::string& s = it->second;
    int64_t v = 0;
    bool ok = !s.empty() && s.size() <= 18;
    for (char ch : s) {
        if (ch < '0' || ch > '9') ok = false;
        v = v * 10 + (ch - '0');
    }
    if (!ok) throw Error(concat(who, ": \"", key, "\" is \"", s, "\", not a step count"));
    return v;
}

// Builds slots for `params` from `state`, checking everything before returning: each trainable
// parameter needs every "<prefix><buffer>.<name>" tensor with its shape, and `state` may hold no
// other tensor. Throws Error naming the first problem.
template <class T>
std::vector<OptimSlot<T>> optim_import(const char* who, const std::string& prefix,
                                       const std::vector<std::string>& buffer_names,
                                       const OptimizerState<T>& state,
                                       const ParameterList<T>& params) {
    std::map<std::string, const Tensor<T>*> by_name;
    for (const auto& entry : state.tensors) by_name[entry.first] = &entry.second;
    std::vector<OptimSlot<T>> slots;
    std::size_t used = 0;
    for (const Parameter<T>* p : params) {
        if (!p->trainable) continue;
        OptimSlot<T> s;
        s.name = p->name;
        for (const std::string& b : buffer_names) {
            const std::string key = prefix + b + "." + p->name;
            auto it = by_name.find(key);
            if (it == by_name.end()) {
                throw Error(concat(who, ": optimizer state has no tensor \"", key,
                                   "\" for parameter \"", p->name, "\" (saved for a different ",
                                   "model or optimizer?)"));
            }
            if (it->second->shape() != p->value.shape()) {
                throw Error(concat(who, ": optimizer state tensor \"", key, "\" has shape ",
                                   it->second->shape().str(), ", parameter \"", p->name,
                                   "\" has shape ", p->value.shape().str()));
            }
            s.buffers.push_back(*it->second);
            ++used;
        }
        slots.push_back(std::move(s));
    }
    if (used != state.tensors.size()) {
        for (const auto& entry : state.tensors) {
            bool known = false;
            for (const auto& s : slots) {
                for (const std::string& b : buffer_names) {
                    if (entry.first == prefix + b + "." + s.name) known = true;
                }
            }
            if (!known) {
                throw Error(concat(who, ": optimizer state tensor \"", entry.first,
                                   "\" matches no trainable parameter of this model"));
            }
        }
        throw Error(concat(who, ": optimizer state names a tensor twice (", state.tensors.size(),
                           " tensors, ", by_name.size(), " distinct names)"));
    }
    return slots;
}

// Applies body(lo, hi) over [0, count) in fixed blocks, in parallel. Every element's update is
// independent, so the result does not depend on the thread count.
template <class Body>
void optim_for_blocks(int64_t count, Body&& body) {
    constexpr int64_t kBlock = 16384;
    parallel_for(0, (count + kBlock - 1) / kBlock, [&](int64_t b) {
        body(b * kBlock, std::min(count, (b + 1) * kBlock));
    });
}

}  // namespace detail
}  // namespace unetpp
