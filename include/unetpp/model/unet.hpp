#pragma once
// UNet: the U-Net of Ronneberger et al. (arXiv:1505.04597), built at run time from a UNetConfig
// into named stages with explicit skip pairs:
//
//   input --pad--> enc1 -pool-> enc2 -pool-> ... encD -pool-> bottleneck
//                   |            |                |               |
//                   skip1        skip2            skipD           up
//                   v            v                v               v
//   logits <-crop- head <- dec1 <-up- dec2 <-up- ... decD <-concat[up(bottleneck), skipD]
//
//   encL, bottleneck, decL:  conv3x3 (+BN) + act  [+dropout]  conv3x3 (+BN) + act
//   decL input:              concat(up(previous), encL output)  (upsampled first, then the skip)
//   up:                      2x2 stride-2 transposed conv, or bilinear 2x + 3x3 conv
//   head:                    1x1 conv to out_channels logits
//
// Parameter names: "enc1.conv1.weight", "enc1.bn1.running_mean", "bottleneck.conv2.bias",
// "dec4.up.weight" (or "dec4.up.conv.weight" for bilinear), "dec1.conv2.weight", "head.weight".
// Order: enc1..encD, bottleneck, decD..dec1, head; inside a stage in forward order.
//
// The model outputs logits; the sigmoid lives in the loss (BCE on logits is stable) and in
// predict_probabilities().
//
// Input sizes: any N, and any H, W >= 1. H and W are padded up to the next multiple of 2^depth by
// reflection about the edge pixels (centred: the extra row goes to the bottom), and the logits are
// cropped back to H x W. Reflection folds repeatedly when the pad exceeds the image (H = 1:
// replication). Gradients flow through the crop and the padding (the padding's adjoint adds every
// mirrored copy back onto its source pixel).
//
// Memory is planned once per input shape: every activation, cache and gradient buffer is a member
// Tensor resized only when the shape changes (Tensor::resize keeps its capacity), so a training
// loop at a fixed shape allocates nothing after its first step.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "unetpp/detail/reflect.hpp"
#include "unetpp/error.hpp"
#include "unetpp/kernels/activation.hpp"
#include "unetpp/kernels/fill.hpp"
#include "unetpp/layers/batchnorm2d.hpp"
#include "unetpp/layers/concat.hpp"
#include "unetpp/layers/conv2d.hpp"
#include "unetpp/layers/conv_transpose2d.hpp"
#include "unetpp/layers/dropout.hpp"
#include "unetpp/layers/elu.hpp"
#include "unetpp/layers/maxpool2d.hpp"
#include "unetpp/layers/relu.hpp"
#include "unetpp/layers/upsample.hpp"
#include "unetpp/model/unet_config.hpp"
#include "unetpp/parallel.hpp"
#include "unetpp/parameter.hpp"
#include "unetpp/random.hpp"
#include "unetpp/tensor.hpp"

namespace unetpp {

namespace detail {

// Where an H x W image sits inside its padded Hp x Wp canvas.
struct PadPlan {
    int64_t H = 0, W = 0, Hp = 0, Wp = 0, top = 0, left = 0;
};

// xp[n,c,i,j] = x[n,c, reflect(i - top), reflect(j - left)]. ASSIGNS xp.
template <class T>
void reflect_pad_forward(const PadPlan& p, ConstTensorView<T> x, TensorView<T> xp) {
    parallel_for(0, x.n() * x.c(), [&](int64_t plane) {
        const int64_t n = plane / x.c(), c = plane % x.c();
        for (int64_t i = 0; i < p.Hp; ++i) {
            const int64_t si = reflect_index(i - p.top, p.H);
            for (int64_t j = 0; j < p.Wp; ++j) {
                xp(n, c, i, j) = x(n, c, si, reflect_index(j - p.left, p.W));
            }
        }
    });
}

// The adjoint: dx[n,c,si,sj] += dxp[n,c,i,j] over every (i, j) that reads (si, sj). ADDS into dx.
template <class T>
void reflect_pad_backward(const PadPlan& p, ConstTensorView<T> dxp, TensorView<T> dx) {
    parallel_for(0, dx.n() * dx.c(), [&](int64_t plane) {
        const int64_t n = plane / dx.c(), c = plane % dx.c();
        for (int64_t i = 0; i < p.Hp; ++i) {
            const int64_t si = reflect_index(i - p.top, p.H);
            for (int64_t j = 0; j < p.Wp; ++j) {
                dx(n, c, si, reflect_index(j - p.left, p.W)) += dxp(n, c, i, j);
            }
        }
    });
}

// ReLU or ELU, chosen at run time; the two layers stay separate classes.
template <class T>
class Activation {
public:
    Activation() = default;
    Activation(const std::string& name, ActivationKind kind)
        : kind_(kind), relu_(name), elu_(name) {}
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        if (kind_ == ActivationKind::relu) relu_.forward(x, y, mode);
        else elu_.forward(x, y, mode);
    }
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (kind_ == ActivationKind::relu) relu_.backward(dy, dx);
        else elu_.backward(dy, dx);
    }
    bool is_relu() const { return kind_ == ActivationKind::relu; }

private:
    ActivationKind kind_ = ActivationKind::relu;
    ReLU<T> relu_;
    ELU<T> elu_;
};

// One level: conv3x3 (+BN) + act [+dropout] conv3x3 (+BN) + act, C -> K channels.
// Owns its intermediate tensors and two ping-pong gradient buffers of its output size.
// With ReLU, the convolutions fuse what follows them into their stores: the ReLU (training
// without batch norm, and inference), and in inference the batch norm too, folded into the
// weights (Conv2d::forward_folded). Training with batch norm fuses the ReLU into the batch
// norm's normalising pass instead. A fused training forward gives the same bits as the
// layer-by-layer one; backward then reads the ReLU's derivative off the stored output.
// set_fusion(false) runs layer by layer (for tests and for timing what fusion saves).
template <class T>
class ConvBlock {
public:
    ConvBlock() = default;
    ConvBlock(const std::string& name, int64_t C, int64_t K, const UNetConfig& config,
              uint64_t dropout_seed)
        : batch_norm_(config.batch_norm), dropout_(config.dropout > 0) {
        conv1_ = Conv2d<T>(name + ".conv1", Conv2dSpec{C, K, 3, 3, 1, 1});
        conv2_ = Conv2d<T>(name + ".conv2", Conv2dSpec{K, K, 3, 3, 1, 1});
        if (batch_norm_) {
            bn1_ = BatchNorm2d<T>(name + ".bn1", BatchNorm2dSpec{K});
            bn2_ = BatchNorm2d<T>(name + ".bn2", BatchNorm2dSpec{K});
        }
        act1_ = Activation<T>(name + ".act1", config.activation);
        act2_ = Activation<T>(name + ".act2", config.activation);
        if (dropout_) drop_ = Dropout<T>(name + ".drop", DropoutSpec{config.dropout, dropout_seed});
        scale_.resize(size_t(K));
        shift_.resize(size_t(K));
    }

    void init(Rng& rng) {
        conv1_.init(rng);
        conv2_.init(rng);
    }

    // Checks input shape x against the layers and returns the output shape. The buffers are
    // sized when a forward or backward first needs them for that shape: an inference forward
    // allocates two activations, a fused training forward only what its backward reads.
    Shape plan(const Shape& x) {
        y_shape_ = conv2_.output_shape(conv1_.output_shape(x));
        return y_shape_;
    }

    // Runs the block on x (planned shape); the result is output().
    void forward(ConstTensorView<T> x, Mode mode) {
        fused_ = stage_fusion(mode);
        conv_stage(conv1_, bn1_, act1_, x, c1_, b1_, a1_, mode);
        ConstTensorView<T> cur = std::as_const(a1_).view();
        if (dropout_ && mode == Mode::train) {
            drop_.forward(cur, sized(d1_), mode);
            cur = std::as_const(d1_).view();
        }
        conv_stage(conv2_, bn2_, act2_, cur, c2_, b2_, out_, mode);
    }

    // Gradient contract: ADDS the input gradient into dx (skipped for an empty dx;
    // GradWrite::assign ASSIGNS it); ASSIGNS the parameter gradients of every layer in the
    // block. The gradients between its layers go into the block's own two buffers, in turn:
    // the convolutions, the batch norms and a fused ReLU assign them (GradWrite::assign), so
    // only a layer that can only add (an activation layer, dropout) gets a zeroed buffer.
    void backward(ConstTensorView<T> dy, TensorView<T> dx, GradWrite write = GradWrite::add) {
        int which = 0;
        auto next = [&](GradWrite write) -> TensorView<T> {
            Tensor<T>& t = which == 0 ? grad_a_ : grad_b_;
            which ^= 1;
            TensorView<T> view = sized(t);
            if (write == GradWrite::add) zero_parallel(t);
            return view;
        };
        constexpr GradWrite assign = GradWrite::assign;
        ConstTensorView<T> g = dy;
        // activation (+ BN) of a stage, from the gradient of its output y: a ReLU fused into
        // the conv takes its derivative from y, one fused into the batch norm is handled
        // inside the batch norm's backward
        auto stage_backward = [&](Activation<T>& act, const Tensor<T>& y, BatchNorm2d<T>& bn) {
            if (fused_ == StageFusion::relu_in_conv) {
                TensorView<T> h = next(assign);
                relu_backward(y.view(), g, h, assign);
                g = h;
            } else if (fused_ != StageFusion::relu_in_bn) {
                TensorView<T> h = next(GradWrite::add);
                act.backward(g, h);
                g = h;
            }
            if (batch_norm_) {
                TensorView<T> h = next(assign);
                bn.backward(g, h, assign);
                g = h;
            }
        };
        stage_backward(act2_, out_, bn2_);
        TensorView<T> h = next(assign);
        // conv2's input is act1's output (no dropout between): conv2's backward applies act1's
        // derivative as it stores, in place of a relu_backward pass over its result
        const bool relu1_in_conv2 = fused_ == StageFusion::relu_in_conv && !dropout_;
        conv2_.backward(g, h, assign,
                        relu1_in_conv2 ? std::as_const(a1_).view() : ConstTensorView<T>());
        g = h;
        if (dropout_) {
            h = next(GradWrite::add);
            drop_.backward(g, h);
            g = h;
        }
        if (!relu1_in_conv2) stage_backward(act1_, a1_, bn1_);
        conv1_.backward(g, dx, write);
    }

    const Tensor<T>& output() const { return out_; }
    void set_fusion(bool on) { fusion_ = on; }

    // Elements allocated in the block's buffers.
    int64_t buffer_capacity() const {
        int64_t n = 0;
        for (const Tensor<T>* t : {&c1_, &b1_, &a1_, &d1_, &c2_, &b2_, &out_, &grad_a_, &grad_b_}) {
            n += t->capacity();
        }
        return n;
    }

    // In forward order: conv1, bn1, conv2, bn2.
    ParameterList<T> parameters() {
        ParameterList<T> list;
        for (auto* p : conv1_.parameters()) list.push_back(p);
        if (batch_norm_) {
            for (auto* p : bn1_.parameters()) list.push_back(p);
        }
        for (auto* p : conv2_.parameters()) list.push_back(p);
        if (batch_norm_) {
            for (auto* p : bn2_.parameters()) list.push_back(p);
        }
        return list;
    }

    // Multiply-adds of one forward per image of the block's input size H x W.
    int64_t forward_macs(int64_t H, int64_t W) const {
        const Conv2dSpec a = conv1_.spec(), b = conv2_.spec();
        return H * W * (a.C * a.K * 9 + b.C * b.K * 9);
    }

private:
    // What a forward fuses into each conv (+ BN) + activation stage (the header comment).
    enum class StageFusion { none, relu_in_conv, bn_and_relu_in_conv, relu_in_bn };
    StageFusion stage_fusion(Mode mode) const {
        if (!fusion_ || !act1_.is_relu()) return StageFusion::none;
        if (!batch_norm_) return StageFusion::relu_in_conv;
        return mode == Mode::infer ? StageFusion::bn_and_relu_in_conv : StageFusion::relu_in_bn;
    }

    // t sized for the planned output shape (a no-op once it has it), as a view to write: each
    // buffer is sized where a pass first writes it, so a forward allocates only what it uses.
    TensorView<T> sized(Tensor<T>& t) {
        t.resize(y_shape_);
        return t.view();
    }

    // conv (+ BN) + activation from x into act_out, fused as fused_ says; conv_out and bn_out
    // hold the intermediate results of the unfused sequence.
    void conv_stage(Conv2d<T>& conv, BatchNorm2d<T>& bn, Activation<T>& act,
                    ConstTensorView<T> x, Tensor<T>& conv_out, Tensor<T>& bn_out,
                    Tensor<T>& act_out, Mode mode) {
        if (fused_ == StageFusion::relu_in_conv) {
            conv.forward(x, sized(act_out), mode, ConvActivation::relu);
            return;
        }
        if (fused_ == StageFusion::bn_and_relu_in_conv) {
            bn.inference_affine(scale_.data(), shift_.data());
            conv.forward_folded(x, sized(act_out), scale_.data(), shift_.data(),
                                ConvActivation::relu);
            return;
        }
        conv.forward(x, sized(conv_out), mode);
        ConstTensorView<T> cur = std::as_const(conv_out).view();
        if (fused_ == StageFusion::relu_in_bn) {  // the ReLU goes into the batch norm's pass
            bn.forward(cur, sized(act_out), mode, true);
            return;
        }
        if (batch_norm_) {
            bn.forward(cur, sized(bn_out), mode);
            cur = std::as_const(bn_out).view();
        }
        act.forward(cur, sized(act_out), mode);
    }

    bool batch_norm_ = false, dropout_ = false;
    bool fusion_ = true;                     // fuse where possible (set_fusion)
    StageFusion fused_ = StageFusion::none;  // what the last forward fused
    std::vector<T> scale_, shift_;  // a batch norm's inference transform, for folding
    Conv2d<T> conv1_, conv2_;
    BatchNorm2d<T> bn1_, bn2_;
    Activation<T> act1_, act2_;
    Dropout<T> drop_;
    Shape y_shape_;  // the output shape of the last plan
    Tensor<T> c1_, b1_, a1_, d1_, c2_, b2_, out_;
    Tensor<T> grad_a_, grad_b_;
};

// The decoder's 2x upsampling, transposed conv or bilinear + conv, C -> K channels.
template <class T>
class UpStage {
public:
    UpStage() = default;
    UpStage(const std::string& name, int64_t C, int64_t K, UpsampleKind kind) : kind_(kind) {
        if (kind == UpsampleKind::transposed_conv) {
            tconv_ = ConvTranspose2d<T>(name, ConvTranspose2dSpec{C, K});
        } else {
            bilinear_ = BilinearUpConv<T>(name, BilinearUpConvSpec{C, K, 3});
        }
    }
    void init(Rng& rng) {
        if (kind_ == UpsampleKind::transposed_conv) tconv_.init(rng);
        else bilinear_.init(rng);
    }
    Shape output_shape(const Shape& x) const {
        return kind_ == UpsampleKind::transposed_conv ? tconv_.output_shape(x)
                                                      : bilinear_.output_shape(x);
    }
    void forward(ConstTensorView<T> x, TensorView<T> y, Mode mode) {
        if (kind_ == UpsampleKind::transposed_conv) tconv_.forward(x, y, mode);
        else bilinear_.forward(x, y, mode);
    }
    // Gradient contract: ADDS into dx, ASSIGNS the parameter gradients.
    void backward(ConstTensorView<T> dy, TensorView<T> dx) {
        if (kind_ == UpsampleKind::transposed_conv) tconv_.backward(dy, dx);
        else bilinear_.backward(dy, dx);
    }
    ParameterList<T> parameters() {
        return kind_ == UpsampleKind::transposed_conv ? tconv_.parameters()
                                                      : bilinear_.parameters();
    }
    // Multiply-adds of one forward per image, for an input of H x W.
    int64_t forward_macs(int64_t H, int64_t W, int64_t C, int64_t K) const {
        return kind_ == UpsampleKind::transposed_conv ? H * W * C * K * 4
                                                      : 4 * H * W * C * K * 9;
    }

private:
    UpsampleKind kind_ = UpsampleKind::transposed_conv;
    ConvTranspose2d<T> tconv_;
    BilinearUpConv<T> bilinear_;
};

}  // namespace detail

template <class T>
class UNet {
public:
    // Builds the stages and draws the weights from config.seed (He normal, zero biases).
    // Throws Error when the config is invalid.
    explicit UNet(const UNetConfig& config) : config_(config) {
        config_.validate();
        const int64_t D = config_.depth;
        enc_.resize(D);
        pool_.resize(D);
        up_.resize(D);
        concat_.resize(D);
        dec_.resize(D);
        level_.resize(D);
        int64_t in = config_.in_channels;
        for (int64_t l = 1; l <= D; ++l) {
            const std::string e = "enc" + std::to_string(l);
            enc_[l - 1] = detail::ConvBlock<T>(e, in, config_.width(l), config_, config_.seed + l);
            pool_[l - 1] = MaxPool2d<T>(e + ".pool");
            in = config_.width(l);
        }
        bottleneck_ = detail::ConvBlock<T>("bottleneck", in, config_.width(D + 1), config_,
                                           config_.seed + D + 1);
        for (int64_t l = D; l >= 1; --l) {
            const std::string d = "dec" + std::to_string(l);
            up_[l - 1] = detail::UpStage<T>(d + ".up", config_.width(l + 1), config_.width(l),
                                            config_.upsample);
            concat_[l - 1] = Concat<T>(d + ".concat");
            dec_[l - 1] = detail::ConvBlock<T>(d, 2 * config_.width(l), config_.width(l), config_,
                                               config_.seed + 2 * D + 2 + l);
        }
        head_ = Conv2d<T>("head", Conv2dSpec{config_.width(1), config_.out_channels, 1, 1, 1, 0});
        init_weights(config_.seed);
    }
    // Layers keep views into the model's own buffers: moving or copying would leave them dangling.
    UNet(const UNet&) = delete;
    UNet& operator=(const UNet&) = delete;

    // Redraws every weight from `seed` (He normal, zero biases; BN gamma 1, beta 0, stats reset).
    void init_weights(uint64_t seed) {
        Rng rng(seed);
        for (int64_t l = 0; l < config_.depth; ++l) enc_[l].init(rng);
        bottleneck_.init(rng);
        for (int64_t l = config_.depth - 1; l >= 0; --l) {
            up_[l].init(rng);
            dec_[l].init(rng);
        }
        head_.init(rng);
        for (Parameter<T>* p : parameters()) {
            if (ends_with(p->name, ".running_var") || ends_with(p->name, ".bn1.weight") ||
                ends_with(p->name, ".bn2.weight")) {
                p->value.fill(T(1));
            } else if (ends_with(p->name, ".running_mean") || ends_with(p->name, ".bn1.bias") ||
                       ends_with(p->name, ".bn2.bias")) {
                p->value.zero();
            }
        }
    }

    // Runs the network on x (N, in_channels, H, W; any H, W >= 1) and returns the logits
    // (N, out_channels, H, W), valid until the next forward. Mode::train keeps what backward
    // needs. Throws ShapeError naming the first layer that cannot take x.
    const Tensor<T>& forward(ConstTensorView<T> x, Mode mode) {
        plan(x.shape());

        // 1. pad the input
        detail::reflect_pad_forward(pad_, x, input_.view());

        // 2. encoder: block, then pool into the next level
        ConstTensorView<T> cur = std::as_const(input_).view();
        for (int64_t l = 0; l < config_.depth; ++l) {
            enc_[l].forward(cur, mode);
            pool_[l].forward(enc_[l].output().view(), level_[l].pooled.view(), mode);
            cur = std::as_const(level_[l].pooled).view();
        }
        bottleneck_.forward(cur, mode);

        // 3. decoder: upsample, concat with the skip, block
        const Tensor<T>* below = &bottleneck_.output();
        for (int64_t l = config_.depth - 1; l >= 0; --l) {
            Level& lv = level_[l];
            up_[l].forward(below->view(), lv.up.view(), mode);
            concat_[l].forward(std::as_const(lv.up).view(), enc_[l].output().view(),
                               lv.cat.view(), mode);
            dec_[l].forward(std::as_const(lv.cat).view(), mode);
            below = &dec_[l].output();
        }

        // 4. head, then crop back to the input size
        head_.forward(below->view(), logits_padded_.view(), mode);
        tensor_copy(crop(std::as_const(logits_padded_).view()), logits_.view());
        trained_forward_ = mode == Mode::train;
        return logits_;
    }

    // Back-propagates dlogits (the loss gradient with respect to the last forward's logits, same
    // shape) through the network. ASSIGNS every trainable, non-frozen parameter's grad; ADDS the
    // input gradient into dx when dx is given (the shape of the forward's x). Requires that the
    // last forward ran in Mode::train.
    void backward(ConstTensorView<T> dlogits, TensorView<T> dx = TensorView<T>()) {
        if (!trained_forward_) {
            throw Error("unet backward: the last forward ran in Mode::infer; run "
                        "forward(x, Mode::train) before backward");
        }
        shape_check("unet backward: dlogits", dlogits.shape(), logits_.shape());
        if (dx.data() != nullptr) shape_check("unet backward: dx", dx.shape(), x_shape_);
        plan_backward(dx.data() != nullptr);

        // 1. un-crop: the padded logits' gradient is zero outside the image
        grad_logits_padded_.zero();
        tensor_copy(dlogits, crop(grad_logits_padded_.view()));

        // 2. head and decoder, top level down: block, concat (split into up and skip), up.
        // A gradient buffer with one writer is assigned (GradWrite::assign), not zeroed and
        // added to; the skip gradient is assigned here and the pooling adds its share below.
        constexpr GradWrite assign = GradWrite::assign;
        head_.backward(std::as_const(grad_logits_padded_).view(), grad_dec_out_[0].view(), assign);
        for (int64_t l = 0; l < config_.depth; ++l) {
            Level& lv = level_[l];
            dec_[l].backward(std::as_const(grad_dec_out_[l]).view(), lv.grad_cat.view(), assign);
            concat_[l].backward(std::as_const(lv.grad_cat).view(), lv.grad_up.view(),
                                lv.grad_skip.view(), assign);
            Tensor<T>& g_in = l + 1 < config_.depth ? grad_dec_out_[l + 1] : grad_bottleneck_;
            up_[l].backward(std::as_const(lv.grad_up).view(), zeroed(g_in));
        }

        // 3. bottleneck and encoder, bottom up: the skip gradient gains the pooling's share
        bottleneck_.backward(std::as_const(grad_bottleneck_).view(),
                             level_[config_.depth - 1].grad_pooled.view(), assign);
        for (int64_t l = config_.depth - 1; l >= 0; --l) {
            Level& lv = level_[l];
            pool_[l].backward(std::as_const(lv.grad_pooled).view(), lv.grad_skip.view());
            TensorView<T> g_in = l > 0 ? level_[l - 1].grad_pooled.view()
                                       : (dx.data() ? grad_input_.view() : TensorView<T>());
            enc_[l].backward(std::as_const(lv.grad_skip).view(), g_in, assign);
        }

        // 4. through the padding into dx
        if (dx.data() != nullptr) {
            detail::reflect_pad_backward(pad_, std::as_const(grad_input_).view(), dx);
        }
    }

    // sigmoid(logits) of an inference forward: per-pixel foreground probabilities, valid until
    // the next forward.
    const Tensor<T>& predict_probabilities(ConstTensorView<T> x) {
        const Tensor<T>& logits = forward(x, Mode::infer);
        probabilities_.resize(logits.shape());
        sigmoid_forward(logits.view(), probabilities_.view());
        return probabilities_;
    }

    // Every parameter (trainable and BN running statistics) in the stable order described above.
    ParameterList<T> parameters() {
        ParameterList<T> list;
        auto append = [&](ParameterList<T> more) {
            list.insert(list.end(), more.begin(), more.end());
        };
        for (auto& e : enc_) append(e.parameters());
        append(bottleneck_.parameters());
        for (int64_t l = config_.depth - 1; l >= 0; --l) {
            append(up_[l].parameters());
            append(dec_[l].parameters());
        }
        append(head_.parameters());
        return list;
    }
    // Number of trainable scalars (1,941,105 for UNetConfig::unet16()).
    int64_t parameter_count() { return unetpp::parameter_count(parameters()); }

    // Multiply-adds x 2 of one forward on one H x W image (after padding): convolutions only.
    double forward_flops(int64_t H, int64_t W) const {
        const int64_t m = int64_t(1) << config_.depth;
        int64_t h = (H + m - 1) / m * m, w = (W + m - 1) / m * m;
        int64_t macs = 0;
        for (int64_t l = 0; l < config_.depth; ++l) {
            macs += enc_[l].forward_macs(h >> l, w >> l);
            macs += dec_[l].forward_macs(h >> l, w >> l);
            macs += up_[l].forward_macs(h >> (l + 1), w >> (l + 1), config_.width(l + 2),
                                        config_.width(l + 1));
        }
        macs += bottleneck_.forward_macs(h >> config_.depth, w >> config_.depth);
        macs += h * w * config_.width(1) * config_.out_channels;
        return 2.0 * double(macs);
    }

    const UNetConfig& config() const { return config_; }
    const Tensor<T>& logits() const { return logits_; }

    // Bytes allocated in the model's activation and gradient buffers (not the parameters, the
    // kernels' scratch or the layers' own caches). An inference forward allocates only the
    // activations it writes; the first backward at a shape adds the gradient buffers.
    int64_t buffer_bytes() const {
        int64_t n = input_.capacity() + grad_input_.capacity() + grad_bottleneck_.capacity() +
                    logits_padded_.capacity() + grad_logits_padded_.capacity() +
                    logits_.capacity() + probabilities_.capacity();
        for (const Level& lv : level_) {
            for (const Tensor<T>* t : {&lv.pooled, &lv.up, &lv.cat, &lv.grad_pooled, &lv.grad_up,
                                       &lv.grad_cat, &lv.grad_skip}) {
                n += t->capacity();
            }
        }
        for (const Tensor<T>& t : grad_dec_out_) n += t.capacity();
        for (const auto& e : enc_) n += e.buffer_capacity();
        for (const auto& d : dec_) n += d.buffer_capacity();
        n += bottleneck_.buffer_capacity();
        return n * int64_t(sizeof(T));
    }

    // On (the default), each convolution block fuses its ReLU into the convolution's stores, and
    // in inference also its batch norm into the weights (detail::ConvBlock). Off, every layer
    // runs on its own: the training results are the same bits either way, inference results the
    // same up to float rounding. Takes effect at the next forward.
    void set_fusion(bool on) {
        for (auto& e : enc_) e.set_fusion(on);
        bottleneck_.set_fusion(on);
        for (auto& d : dec_) d.set_fusion(on);
    }

private:
    // Per-level buffers owned by the model (the blocks own their own intermediates).
    struct Level {
        Shape skip_shape;  // the encoder block's output, which the decoder's concat takes
        Tensor<T> pooled, up, cat;
        Tensor<T> grad_pooled, grad_up, grad_cat, grad_skip;
    };

    static bool ends_with(const std::string& s, const std::string& tail) {
        return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    }
    static TensorView<T> zeroed(Tensor<T>& t) {
        zero_parallel(t);
        return t.view();
    }
    // The window [top, top+H) x [left, left+W) of a padded N C Hp Wp view (strided).
    template <class View>
    View crop(View padded) const {
        const auto& strides = padded.strides();
        auto* base = padded.data() + pad_.top * strides[2] + pad_.left * strides[3];
        return View(base, Shape{padded.n(), padded.c(), pad_.H, pad_.W}, strides);
    }

    // Resizes every buffer for input shape x; a no-op when x has the planned shape.
    void plan(const Shape& x) {
        if (x == x_shape_) return;
        if (x.rank() != 4 || x[2] < 1 || x[3] < 1) {
            throw ShapeError(detail::concat("unet: input must be N C H W with H, W >= 1, got ",
                                            x.str()));
        }
        const int64_t m = int64_t(1) << config_.depth;
        pad_.H = x[2];
        pad_.W = x[3];
        pad_.Hp = (x[2] + m - 1) / m * m;
        pad_.Wp = (x[3] + m - 1) / m * m;
        pad_.top = (pad_.Hp - pad_.H) / 2;
        pad_.left = (pad_.Wp - pad_.W) / 2;

        input_.resize(Shape{x[0], x[1], pad_.Hp, pad_.Wp});
        Shape cur = input_.shape();
        for (int64_t l = 0; l < config_.depth; ++l) {
            level_[l].skip_shape = enc_[l].plan(cur);
            cur = pool_[l].output_shape(level_[l].skip_shape);
            level_[l].pooled.resize(cur);
        }
        cur = bottleneck_.plan(cur);
        grad_dec_out_.resize(config_.depth);
        for (int64_t l = config_.depth - 1; l >= 0; --l) {
            Level& lv = level_[l];
            lv.up.resize(up_[l].output_shape(cur));
            lv.cat.resize(concat_[l].output_shape(lv.up.shape(), lv.skip_shape));
            cur = dec_[l].plan(lv.cat.shape());
        }
        logits_padded_.resize(head_.output_shape(cur));
        logits_.resize(Shape{x[0], config_.out_channels, pad_.H, pad_.W});
        x_shape_ = x;
    }

    // The gradient buffers for the planned shape, sized at the first backward that needs them
    // (no-ops after that): inference never allocates them.
    void plan_backward(bool input_grad) {
        for (int64_t l = 0; l < config_.depth; ++l) {
            Level& lv = level_[l];
            lv.grad_pooled.resize(lv.pooled.shape());
            lv.grad_skip.resize(lv.skip_shape);
            lv.grad_up.resize(lv.up.shape());
            lv.grad_cat.resize(lv.cat.shape());
            grad_dec_out_[l].resize(dec_[l].output().shape());
        }
        grad_bottleneck_.resize(bottleneck_.output().shape());
        grad_logits_padded_.resize(logits_padded_.shape());
        if (input_grad) grad_input_.resize(input_.shape());
    }

    UNetConfig config_;
    std::vector<detail::ConvBlock<T>> enc_;
    std::vector<MaxPool2d<T>> pool_;
    detail::ConvBlock<T> bottleneck_;
    std::vector<detail::UpStage<T>> up_;
    std::vector<Concat<T>> concat_;
    std::vector<detail::ConvBlock<T>> dec_;
    Conv2d<T> head_;

    Shape x_shape_;
    detail::PadPlan pad_;
    std::vector<Level> level_;
    Tensor<T> input_, grad_input_, grad_bottleneck_;
    std::vector<Tensor<T>> grad_dec_out_;  // gradient of dec<l+1>'s output
    Tensor<T> logits_padded_, grad_logits_padded_, logits_, probabilities_;
    bool trained_forward_ = false;
};

}  // namespace unetpp
