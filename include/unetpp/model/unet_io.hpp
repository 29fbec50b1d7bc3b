#pragma once
// Saving and loading a UNet (and optionally its optimizer) as a safetensors checkpoint, through
// include/unetpp/checkpoint.hpp.
//
// The file holds every parameter under its name ("enc1.conv1.weight", BN running statistics
// included), the optimizer state under "optim.*", and metadata "unetpp.config" = the model's
// UNetConfig::to_string(). Loading parses that string and refuses a checkpoint whose architecture
// differs (UNetConfig::same_architecture: seed and dropout may differ), naming both.

#include <map>
#include <string>

#include "unetpp/checkpoint.hpp"
#include "unetpp/error.hpp"
#include "unetpp/model/unet.hpp"
#include "unetpp/model/unet_config.hpp"
#include "unetpp/optim/state.hpp"

namespace unetpp {

// The UNetConfig stored in a checkpoint read with checkpoint_read. Throws IoError naming the file
// when it has no "unetpp.config" or the string does not parse.
inline UNetConfig unet_checkpoint_config(const Checkpoint& ckpt) {
    auto it = ckpt.metadata.find("unetpp.config");
    if (it == ckpt.metadata.end()) {
        throw IoError(detail::concat(ckpt.source, ": no \"unetpp.config\" metadata; not a unetpp "
                                     "U-Net checkpoint"));
    }
    try {
        return UNetConfig::parse(it->second);
    } catch (const Error& e) {
        throw IoError(detail::concat(ckpt.source, ": bad \"unetpp.config\": ", e.what()));
    }
}

namespace detail {
// Checks the architecture, then copies the parameters (all checks before any copy).
template <class T>
void unet_load_checked(const Checkpoint& ckpt, UNet<T>& net) {
    const UNetConfig saved = unet_checkpoint_config(ckpt);
    if (!saved.same_architecture(net.config())) {
        throw IoError(concat(ckpt.source, ": checkpoint is for a different U-Net: saved \"",
                             saved.to_string(), "\", this model \"", net.config().to_string(),
                             "\" (build the model from unet_checkpoint_config)"));
    }
    checkpoint_load_parameters(ckpt, net.parameters());
}
}  // namespace detail

// Writes net's parameters and config to `path` (atomically). Throws IoError when it cannot.
template <class T>
void unet_save(const std::string& path, UNet<T>& net) {
    checkpoint_save_model(path, net.parameters(),
                          std::map<std::string, std::string>{
                              {"unetpp.config", net.config().to_string()}});
}

// The same plus the optimizer's state (any optimizer with state_save(), e.g. Adam, Sgd), so that
// training resumes bit-identically.
template <class T, class Optimizer>
void unet_save(const std::string& path, UNet<T>& net, const Optimizer& optimizer) {
    checkpoint_save_model(path, net.parameters(), optimizer.state_save(),
                          std::map<std::string, std::string>{
                              {"unetpp.config", net.config().to_string()}});
}

// Loads `path` into net. Throws IoError naming the file when its architecture differs from
// net.config() (both configs in the message) or any tensor is missing or misshapen; net is then
// unchanged.
template <class T>
void unet_load(const std::string& path, UNet<T>& net) {
    const Checkpoint ckpt = checkpoint_read(path);
    detail::unet_load_checked(ckpt, net);
}

// The same, also restoring the optimizer's state (its state_load checks it against the model).
template <class T, class Optimizer>
void unet_load(const std::string& path, UNet<T>& net, Optimizer& optimizer) {
    const Checkpoint ckpt = checkpoint_read(path);
    const OptimizerState<T> state = checkpoint_optimizer_state<T>(ckpt);
    detail::unet_load_checked(ckpt, net);
    optimizer.state_load(state, net.parameters());
}

}  // namespace unetpp
