#pragma once
// Random initialisation of weights and latent states (reference/eqr_spec.md §1.2, §1.7): the JAX-style
// compensated truncated normal, plus generator helpers so every random draw can be seeded.
//
// Shape legend: B batch, S cells, D hidden, V vocab. Functions here take any shape.

#include <cstdint>
#include <optional>

#include <ATen/Tensor.h>
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>
#include <c10/core/TensorOptions.h>
#include <c10/util/ArrayRef.h>

namespace eqr::model {

/// Truncation bound of the standard normal, in units of the uncompensated std (the reference's ±2).
inline constexpr double kTruncBound = 2.0;

/// sqrt(Var[X]) for X ~ N(0, 1) truncated to [-2, 2] (= 0.879626...). comp_std = std / this.
double truncated_unit_std();

/// The std the erfinv samples are scaled by so that the truncated result has std `std` exactly:
/// std / truncated_unit_std() (= 1.13685 * std). Values are clipped to ±2 * compensated_std(std).
double compensated_std(double std);

/// Fills `tensor` in place with compensated truncated-normal samples of std `std`, exactly as the
/// reference's trunc_normal_init_: u ~ U(erf(-2/√2), erf(2/√2)); x = erfinv(u) * √2 * comp_std;
/// clip to ±2*comp_std. std == 0 fills zeros. Computed in the tensor's own dtype (as the reference,
/// which draws bf16 states in bf16). No autograd recording. `gen` may live on another device than the
/// tensor; the samples are then drawn there and copied. Returns `tensor`.
at::Tensor& trunc_normal_(at::Tensor& tensor, double std, std::optional<at::Generator> gen = std::nullopt);

/// A new tensor of `shape` and `options` filled by trunc_normal_.
at::Tensor trunc_normal(c10::IntArrayRef shape, double std, const c10::TensorOptions& options,
                        std::optional<at::Generator> gen = std::nullopt);

/// Standard normal samples of `shape` and `options` (dtype included), drawn from `gen` (the global
/// generator of the device when absent). As trunc_normal, `gen` may live on another device.
at::Tensor randn(c10::IntArrayRef shape, const c10::TensorOptions& options,
                 std::optional<at::Generator> gen = std::nullopt);

/// A fresh generator of `device`'s kind (a clone of its default generator) seeded with `seed`.
/// Device-agnostic: works for CPU and CUDA without device-specific code.
at::Generator make_generator(const c10::Device& device, uint64_t seed);

/// An independent generator in `gen`'s state (at::Generator::clone(), without its leak: LibTorch 1.13's
/// GeneratorImpl::clone() returns an object the last owner never deletes, about 2.6 KB per CPU clone, found
/// by LeakSanitizer; there a CPU generator is copied through get_state/set_state instead). The caller locks
/// `gen`'s mutex if other threads may draw from it.
at::Generator copy_generator(const at::Generator& gen);

}  // namespace eqr::model
