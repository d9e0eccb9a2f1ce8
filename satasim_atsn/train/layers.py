"""Numpy building blocks of the STBP trainer: im2col convolution, tdBN, LIF with surrogate, pooling.

Layout: activations are channel-last. A spike or current map over time is ``[T, B, H, W, C]``
(all T*B frames go through one GEMM); a static image's first-layer current is ``[B, H, W, C]``
and is broadcast over time by the LIF. Convolution weights are ``[k*k*Cin, Cout]`` with rows in
(ki, kj, cin) order, so an im2col row is a contiguous copy of ``k*k`` shifted slices.
Every ``*_forward`` returns ``(out, cache)``; the matching ``*_backward`` takes ``(grad, cache)``.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


# ------------------------------------------------------------------------------------------
# convolution (im2col + one GEMM for all frames)
# ------------------------------------------------------------------------------------------
def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int, pad_value: np.ndarray | float = 0.0,
           fast: bool = True) -> np.ndarray:
    """[N, H, W, C] -> [N*Ho*Wo, k*k*C] patches in (ki, kj, c) order; borders filled with ``pad_value`` [C]."""
    n, h, w, c = x.shape
    ho, wo = conv_out_size(h, kernel, stride, padding), conv_out_size(w, kernel, stride, padding)
    if fast and x.dtype == F32:
        from satasim_atsn.snn.kernels import im2col_into

        cols = np.empty((n * ho * wo, kernel * kernel * c), dtype=F32)
        pad = np.broadcast_to(np.asarray(pad_value, dtype=F32), (c,)).copy()
        im2col_into(np.ascontiguousarray(x), kernel, stride, padding, pad, cols)
        return cols
    if padding:
        xp = np.empty((n, h + 2 * padding, w + 2 * padding, c), dtype=x.dtype)
        xp[...] = pad_value
        xp[:, padding:padding + h, padding:padding + w] = x
    else:
        xp = x
    cols = np.empty((n, ho, wo, kernel, kernel, c), dtype=x.dtype)
    for i in range(kernel):
        for j in range(kernel):
            cols[:, :, :, i, j, :] = xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
    return cols.reshape(n * ho * wo, kernel * kernel * c)


def col2im(cols: np.ndarray, shape: tuple[int, int, int, int], kernel: int, stride: int, padding: int,
           fast: bool = True) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add patch gradients back to [N, H, W, C]."""
    n, h, w, c = shape
    ho, wo = conv_out_size(h, kernel, stride, padding), conv_out_size(w, kernel, stride, padding)
    if fast and cols.dtype == F32:
        from satasim_atsn.train.kernels import col2im_kernel

        dx = np.zeros(shape, dtype=F32)
        col2im_kernel(np.ascontiguousarray(cols), kernel, stride, padding, dx)
        return dx
    cols = cols.reshape(n, ho, wo, kernel, kernel, c)
    xp = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=cols.dtype)
    for i in range(kernel):
        for j in range(kernel):
            xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :] += cols[:, :, :, i, j, :]
    return xp[:, padding:padding + h, padding:padding + w, :]


def conv_forward(x: np.ndarray, w: np.ndarray, kernel: int, stride: int, padding: int,
                 need_input_grad: bool = True, pad_value: np.ndarray | float = 0.0) -> tuple[np.ndarray, tuple]:
    """Convolution of frames ``x`` [..., H, W, C] (leading axes are frames) with ``w`` [k*k*C, Cout].

    ``pad_value`` fills the border; the first layer pads with the normalised value of a zero pixel,
    because the integer forward pads the raw uint8 image with zeros.
    """
    lead = x.shape[:-3]
    frames = x.reshape((-1,) + x.shape[-3:])
    n, h, wd, _ = frames.shape
    cols = im2col(frames, kernel, stride, padding, pad_value)
    out = cols @ w
    ho, wo = conv_out_size(h, kernel, stride, padding), conv_out_size(wd, kernel, stride, padding)
    return out.reshape(lead + (ho, wo, w.shape[1])), (cols, frames.shape, lead, kernel, stride, padding,
                                                       need_input_grad)


def conv_backward(grad: np.ndarray, w: np.ndarray, cache: tuple) -> tuple[np.ndarray | None, np.ndarray]:
    """Gradients (dx or None, dw) of :func:`conv_forward`."""
    cols, shape, lead, kernel, stride, padding, need_input_grad = cache
    g2 = grad.reshape(-1, w.shape[1])
    dw = cols.T @ g2
    if not need_input_grad:
        return None, dw
    dcols = g2 @ w.T
    dx = col2im(dcols, shape, kernel, stride, padding)
    return dx.reshape(lead + shape[1:]), dw


# ------------------------------------------------------------------------------------------
# linear
# ------------------------------------------------------------------------------------------
def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, tuple]:
    """``x`` [..., F] @ ``w`` [F, O] (+ b)."""
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    out = x2 @ w
    if b is not None:
        out += b
    return out.reshape(lead + (w.shape[1],)), (x2, lead)


def linear_backward(grad: np.ndarray, w: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of :func:`linear_forward`."""
    x2, lead = cache
    g2 = grad.reshape(-1, w.shape[1])
    return (g2 @ w.T).reshape(lead + (w.shape[0],)), x2.T @ g2, g2.sum(axis=0)


# ------------------------------------------------------------------------------------------
# tdBN: batch norm over time, batch and space, per channel (channel-last)
# ------------------------------------------------------------------------------------------
def bn_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running: dict | None, training: bool,
               momentum: float = 0.1, eps: float = 1e-5) -> tuple[np.ndarray, tuple]:
    """Normalise ``x`` [..., C] over every axis but the last; update ``running`` stats when training."""
    c = x.shape[-1]
    x2 = x.reshape(-1, c)
    if training:
        mean = x2.mean(axis=0)
        xc = x2 - mean
        var = np.einsum("ij,ij->j", xc, xc) / x2.shape[0]
        if running is not None:
            m = x2.shape[0]
            running["mean"] = (1 - momentum) * running["mean"] + momentum * mean
            running["var"] = (1 - momentum) * running["var"] + momentum * var * m / max(m - 1, 1)
    else:
        mean, var = running["mean"].astype(x.dtype), running["var"].astype(x.dtype)
        xc = x2 - mean
    inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat = xc * inv
    out = xhat * gamma + beta
    return out.reshape(x.shape), (xhat, inv, gamma, x.shape)


def bn_backward(grad: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dgamma, dbeta) of :func:`bn_forward` in training mode."""
    xhat, inv, gamma, shape = cache
    g2 = grad.reshape(-1, shape[-1])
    m = g2.shape[0]
    dbeta = g2.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", g2, xhat)
    dx = (gamma * inv / m) * (m * g2 - dbeta - xhat * dgamma)
    return dx.reshape(shape).astype(grad.dtype, copy=False), dgamma, dbeta


# ------------------------------------------------------------------------------------------
# LIF with hard reset and the triangle surrogate (eq. 1-2, 14)
# ------------------------------------------------------------------------------------------
def triangle(u: np.ndarray, vth: float) -> np.ndarray:
    """Surrogate derivative ds/du = max(0, 1 - |u - vth| / vth) (eq. 14)."""
    return np.maximum(F32(0.0), F32(1.0) - np.abs(u - F32(vth)) / F32(vth))


def smooth_spike(u: np.ndarray, vth: float) -> np.ndarray:
    """The antiderivative of the triangle: a smooth spike used only by gradient checks."""
    z = np.clip((u - vth) / vth, -1.0, 1.0)
    return np.where(z < 0, 0.5 * (1 + z) ** 2, 1 - 0.5 * (1 - z) ** 2)


def lif_forward(current: np.ndarray, timesteps: int, static: bool = False, tau: float = 0.5, vth: float = 1.0,
                smooth: bool = False, fast: bool = True) -> tuple[np.ndarray, tuple]:
    """LIF over time: u_t = tau*u_{t-1}*(1-s_{t-1}) + I_t, s_t = u_t > vth; ``static`` current is the same each t.

    float32 inputs use the numba kernel unless ``fast`` is False; ``smooth`` (gradient checks) uses numpy.
    """
    shape = current.shape if static else current.shape[1:]
    if fast and not smooth and current.dtype == F32:
        from satasim_atsn.train.kernels import lif_forward_kernel

        m = int(np.prod(shape))
        cur2 = np.ascontiguousarray(current).reshape(1 if static else timesteps, m)
        us = np.empty((timesteps, m), dtype=F32)
        ss = np.empty((timesteps, m), dtype=F32)
        lif_forward_kernel(cur2, static, us, ss, float(tau), float(vth))
        us = us.reshape((timesteps,) + shape)
        ss = ss.reshape((timesteps,) + shape)
        return ss, (us, ss, tau, vth, static)
    us = np.empty((timesteps,) + shape, dtype=current.dtype)
    ss = np.empty((timesteps,) + shape, dtype=current.dtype)
    u = np.zeros(shape, dtype=current.dtype)
    s = np.zeros(shape, dtype=current.dtype)
    for t in range(timesteps):
        u = F32(tau) * u * (1 - s) + (current if static else current[t])
        s = smooth_spike(u, vth).astype(current.dtype) if smooth else (u > vth).astype(current.dtype)
        us[t], ss[t] = u, s
    return ss, (us, ss, tau, vth, static)


def lif_backward(grad: np.ndarray, cache: tuple, fast: bool = True) -> np.ndarray:
    """BPTT through the LIF (reset path included); returns dL/dI with the shape of the forward current."""
    us, ss, tau, vth, static = cache
    timesteps = us.shape[0]
    if fast and us.dtype == F32:
        from satasim_atsn.train.kernels import lif_backward_kernel

        m = us[0].size
        gi = np.empty((1 if static else timesteps, m), dtype=F32)
        lif_backward_kernel(np.ascontiguousarray(grad, dtype=F32).reshape(timesteps, m), us.reshape(timesteps, m),
                            ss.reshape(timesteps, m), float(tau), float(vth), static, gi)
        return gi.reshape(us.shape[1:] if static else us.shape)
    gi = np.empty_like(us)
    gu_next = np.zeros(us.shape[1:], dtype=us.dtype)
    tau = F32(tau) if us.dtype == F32 else tau
    for t in range(timesteps - 1, -1, -1):
        gs = grad[t] - gu_next * tau * us[t]
        gu = gs * triangle(us[t], vth) + gu_next * tau * (1 - ss[t])
        gi[t] = gu
        gu_next = gu
    return gi.sum(axis=0) if static else gi


# ------------------------------------------------------------------------------------------
# pooling of spikes
# ------------------------------------------------------------------------------------------
def maxpool_forward(x: np.ndarray, kernel: int, fast: bool = True) -> tuple[np.ndarray, tuple]:
    """Non-overlapping spike max-pooling (an OR for 0/1 spikes) over [..., H, W, C]; odd edges dropped."""
    *lead, h, w, c = x.shape
    ho, wo = h // kernel, w // kernel
    if fast and kernel == 2 and x.dtype == F32:
        from satasim_atsn.train.kernels import maxpool2_forward_kernel

        frames = np.ascontiguousarray(x).reshape(-1, h, w, c)
        out = np.empty((frames.shape[0], ho, wo, c), dtype=F32)
        arg = np.empty((frames.shape[0], ho, wo, c), dtype=np.int8)
        maxpool2_forward_kernel(frames, out, arg)
        return out.reshape(tuple(lead) + (ho, wo, c)), ("fast", arg, x.shape)
    xc = x[..., :ho * kernel, :wo * kernel, :].reshape(tuple(lead) + (ho, kernel, wo, kernel, c))
    win = np.moveaxis(xc, -4, -3).reshape(tuple(lead) + (ho, wo, kernel * kernel, c))
    arg = win.argmax(axis=-2)
    out = np.take_along_axis(win, arg[..., None, :], axis=-2)[..., 0, :]
    return out, (arg, x.shape, kernel)


def maxpool_backward(grad: np.ndarray, cache: tuple) -> np.ndarray:
    """Route each pooled gradient to the first maximal input of its window."""
    if isinstance(cache[0], str):
        from satasim_atsn.train.kernels import maxpool2_backward_kernel

        _, arg, shape = cache
        dx = np.zeros((arg.shape[0],) + tuple(shape[-3:]), dtype=F32)
        maxpool2_backward_kernel(np.ascontiguousarray(grad, dtype=F32).reshape(arg.shape), arg, dx)
        return dx.reshape(shape)
    arg, shape, kernel = cache
    *lead, h, w, c = shape
    ho, wo = h // kernel, w // kernel
    win = np.zeros(tuple(lead) + (ho, wo, kernel * kernel, c), dtype=grad.dtype)
    np.put_along_axis(win, arg[..., None, :], grad[..., None, :], axis=-2)
    win = win.reshape(tuple(lead) + (ho, wo, kernel, kernel, c))
    dx = np.zeros(shape, dtype=grad.dtype)
    dx[..., :ho * kernel, :wo * kernel, :] = np.moveaxis(win, -3, -4).reshape(
        tuple(lead) + (ho * kernel, wo * kernel, c))
    return dx


def avgpool_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Global average over H, W of [..., H, W, C] -> [..., C]."""
    return x.mean(axis=(-3, -2)), x.shape


def avgpool_backward(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Spread the gradient evenly over the pooled area."""
    h, w = shape[-3], shape[-2]
    return np.broadcast_to((grad / F32(h * w))[..., None, None, :], shape).astype(grad.dtype)
