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


class Workspace:
    """Float32 buffers kept from one training step to the next, by key.

    A step makes about 1 GB of fresh arrays at the VGG16 width-0.25 batch 64 (im2col patches, GEMM
    outputs); allocating them anew each step costs page faults that the arithmetic does not need.
    Only where values land changes, never how they are computed.
    """

    def __init__(self) -> None:
        self._flat: dict[object, np.ndarray] = {}

    def get(self, key: object, shape: tuple[int, ...], dtype: type = F32) -> np.ndarray:
        """A C-contiguous array of ``shape`` (contents undefined), reusing the buffer under ``key``."""
        size = int(np.prod(shape))
        flat = self._flat.get(key)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = np.empty(size, dtype=dtype)
            self._flat[key] = flat
        return flat[:size].reshape(shape)


# ------------------------------------------------------------------------------------------
# convolution (im2col + one GEMM for all frames)
# ------------------------------------------------------------------------------------------
def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kernel: int, stride: int, padding: int, pad_value: np.ndarray | float = 0.0,
           fast: bool = True, ws: Workspace | None = None, key: object = None) -> np.ndarray:
    """[N, H, W, C] -> [N*Ho*Wo, k*k*C] patches in (ki, kj, c) order; borders filled with ``pad_value`` [C].

    With a workspace the patches go to its buffer ``key`` (float32 only)."""
    n, h, w, c = x.shape
    ho, wo = conv_out_size(h, kernel, stride, padding), conv_out_size(w, kernel, stride, padding)
    if fast and x.dtype == F32:
        from satasim_atsn.snn.kernels import im2col_into

        shape = (n * ho * wo, kernel * kernel * c)
        cols = np.empty(shape, dtype=F32) if ws is None else ws.get(key, shape)
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
           fast: bool = True, ws: Workspace | None = None, key: object = None) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add patch gradients back to [N, H, W, C] (into ``ws[key]`` if given)."""
    n, h, w, c = shape
    ho, wo = conv_out_size(h, kernel, stride, padding), conv_out_size(w, kernel, stride, padding)
    if fast and cols.dtype == F32:
        from satasim_atsn.train.kernels import col2im_kernel

        if ws is None:
            dx = np.zeros(shape, dtype=F32)
        else:
            dx = ws.get(key, tuple(shape))
            dx.fill(0.0)
        col2im_kernel(np.ascontiguousarray(cols), kernel, stride, padding, dx)
        return dx
    cols = cols.reshape(n, ho, wo, kernel, kernel, c)
    xp = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=cols.dtype)
    for i in range(kernel):
        for j in range(kernel):
            xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :] += cols[:, :, :, i, j, :]
    return xp[:, padding:padding + h, padding:padding + w, :]


def conv_forward(x: np.ndarray, w: np.ndarray, kernel: int, stride: int, padding: int,
                 need_input_grad: bool = True, pad_value: np.ndarray | float = 0.0, ws: Workspace | None = None,
                 cols_key: object = None, out_key: object = None) -> tuple[np.ndarray, tuple]:
    """Convolution of frames ``x`` [..., H, W, C] (leading axes are frames) with ``w`` [k*k*C, Cout].

    ``pad_value`` fills the border; the first layer pads with the normalised value of a zero pixel,
    because the integer forward pads the raw uint8 image with zeros. With a workspace, the patches
    and the output are written to its buffers ``cols_key`` and ``out_key`` (the same GEMM call).
    """
    lead = x.shape[:-3]
    frames = x.reshape((-1,) + x.shape[-3:])
    n, h, wd, _ = frames.shape
    fast = ws is not None and x.dtype == F32 and w.dtype == F32
    cols = im2col(frames, kernel, stride, padding, pad_value, ws=ws if fast else None, key=cols_key)
    out = np.matmul(cols, w, out=ws.get(out_key, (cols.shape[0], w.shape[1]))) if fast else cols @ w
    ho, wo = conv_out_size(h, kernel, stride, padding), conv_out_size(wd, kernel, stride, padding)
    return out.reshape(lead + (ho, wo, w.shape[1])), (cols, frames.shape, lead, kernel, stride, padding,
                                                       need_input_grad)


def conv_backward(grad: np.ndarray, w: np.ndarray, cache: tuple, ws: Workspace | None = None,
                  dcols_key: object = None, dx_key: object = None) -> tuple[np.ndarray | None, np.ndarray]:
    """Gradients (dx or None, dw) of :func:`conv_forward`; with a workspace, dcols and dx go to its buffers."""
    cols, shape, lead, kernel, stride, padding, need_input_grad = cache
    g2 = grad.reshape(-1, w.shape[1])
    dw = cols.T @ g2
    if not need_input_grad:
        return None, dw
    fast = ws is not None and g2.dtype == F32 and w.dtype == F32
    dcols = np.matmul(g2, w.T, out=ws.get(dcols_key, (g2.shape[0], w.shape[0]))) if fast else g2 @ w.T
    dx = col2im(dcols, shape, kernel, stride, padding, ws=ws if fast else None, key=dx_key)
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


def column_sum(x2: np.ndarray) -> np.ndarray:
    """``x2.sum(axis=0)`` of [M, C], bit for bit; float32 C-contiguous with C >= 2 runs numpy's order in numba."""
    if x2.dtype == F32 and x2.ndim == 2 and x2.shape[1] >= 2 and x2.flags.c_contiguous:
        from satasim_atsn.train.kernels import column_sums_kernel

        out = np.empty(x2.shape[1], dtype=F32)
        column_sums_kernel(x2, out)
        return out
    return x2.sum(axis=0)


def column_mean(x2: np.ndarray) -> np.ndarray:
    """``x2.mean(axis=0)`` of [M, C], bit for bit: numpy divides the float32 sum by an intp count in float64."""
    if x2.dtype == F32 and x2.ndim == 2 and x2.shape[1] >= 2 and x2.flags.c_contiguous:
        return (column_sum(x2).astype(np.float64) / np.float64(x2.shape[0])).astype(F32)
    return x2.mean(axis=0)


# ------------------------------------------------------------------------------------------
# tdBN: batch norm over time, batch and space, per channel (channel-last)
# ------------------------------------------------------------------------------------------
def _bn_center(x2: np.ndarray, running: dict | None, training: bool, momentum: float, eps: float,
               xc: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x2 - mean, 1/sqrt(var + eps), mean) of tdBN over the rows of x2 [M, C]; updates ``running`` when training.

    With ``xc`` (a float32 buffer of x2's shape) the subtraction runs in numba into it, element by element.
    """
    if training:
        mean = column_mean(x2) if xc is not None else x2.mean(axis=0)
    else:
        mean = running["mean"].astype(x2.dtype)
    if xc is not None and mean.dtype == F32:
        from satasim_atsn.train.kernels import bn_center_kernel

        bn_center_kernel(x2, mean, xc)
    else:
        xc = x2 - mean
    if training:
        var = np.einsum("ij,ij->j", xc, xc) / x2.shape[0]
        if running is not None:
            m = x2.shape[0]
            running["mean"] = (1 - momentum) * running["mean"] + momentum * mean
            running["var"] = (1 - momentum) * running["var"] + momentum * var * m / max(m - 1, 1)
    else:
        var = running["var"].astype(x2.dtype)
    return xc, (1.0 / np.sqrt(var + eps)).astype(x2.dtype), mean


def bn_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running: dict | None, training: bool,
               momentum: float = 0.1, eps: float = 1e-5, ws: Workspace | None = None, xhat_key: object = None,
               overwrite_input: bool = False) -> tuple[np.ndarray, tuple]:
    """Normalise ``x`` [..., C] over every axis but the last; update ``running`` stats when training.

    With a workspace (float32), x - mean and xhat live in its buffer ``xhat_key`` and the element-wise
    steps run in numba with numpy's operation order; ``overwrite_input`` writes the result over ``x``.
    """
    c = x.shape[-1]
    x2 = x.reshape(-1, c)
    fast = ws is not None and x.dtype == gamma.dtype == beta.dtype == F32 and x2.flags.c_contiguous
    xc, inv, mean = _bn_center(x2, running, training, momentum, eps, ws.get(xhat_key, x2.shape) if fast else None)
    if fast and inv.dtype == mean.dtype == F32:
        from satasim_atsn.train.kernels import bn_scale_shift_kernel

        out = x2 if overwrite_input else np.empty_like(x2)
        bn_scale_shift_kernel(xc, inv, gamma, beta, xc, out)
        return out.reshape(x.shape), (xc, inv, gamma, x.shape)
    xhat = xc * inv
    out = xhat * gamma + beta
    return out.reshape(x.shape), (xhat, inv, gamma, x.shape)


def bn_lif_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running: dict | None, training: bool,
                   timesteps: int, tau: float, vth: float, ws: Workspace, keys: tuple, momentum: float = 0.1,
                   eps: float = 1e-5) -> tuple[np.ndarray, tuple, tuple]:
    """:func:`bn_forward` then :func:`lif_forward` of a float32 current x [T, ..., C], fused in one numba pass.

    Returns (spikes, bn cache, lif cache) equal bit for bit to the unfused pair; ``keys`` name the
    workspace buffers of xhat, u and s.
    """
    c = x.shape[-1]
    x2 = x.reshape(-1, c)
    xc, inv, _ = _bn_center(x2, running, training, momentum, eps, ws.get(keys[0], x2.shape))
    from satasim_atsn.train.kernels import bn_lif_forward_kernel

    frame = (timesteps, x2.shape[0] // timesteps, c)
    us, ss = ws.get(keys[1], frame), ws.get(keys[2], frame)
    bn_lif_forward_kernel(xc.reshape(frame), inv, gamma, beta, us, ss, float(tau), float(vth))
    return (ss.reshape(x.shape), (xc, inv, gamma, x.shape),
            (us.reshape(x.shape), ss.reshape(x.shape), tau, vth, False))


def bn_backward(grad: np.ndarray, cache: tuple, overwrite_grad: bool = False) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray]:
    """Gradients (dx, dgamma, dbeta) of :func:`bn_forward` in training mode.

    float32 runs the last element-wise step in numba (numpy's order); ``overwrite_grad`` puts dx in ``grad``.
    """
    xhat, inv, gamma, shape = cache
    g2 = grad.reshape(-1, shape[-1])
    m = g2.shape[0]
    dbeta = column_sum(g2)
    dgamma = np.einsum("ij,ij->j", g2, xhat)
    coef = gamma * inv / m
    if (g2.dtype == xhat.dtype == coef.dtype == dbeta.dtype == dgamma.dtype == F32 and g2.flags.c_contiguous
            and xhat.flags.c_contiguous):
        from satasim_atsn.train.kernels import bn_backward_kernel

        dx = g2 if overwrite_grad else np.empty_like(g2)
        bn_backward_kernel(g2, xhat, coef, F32(m), dbeta, dgamma, dx)
        return dx.reshape(shape), dgamma, dbeta
    dx = coef * (m * g2 - dbeta - xhat * dgamma)
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
                smooth: bool = False, fast: bool = True, ws: Workspace | None = None,
                keys: tuple = (None, None)) -> tuple[np.ndarray, tuple]:
    """LIF over time: u_t = tau*u_{t-1}*(1-s_{t-1}) + I_t, s_t = u_t > vth; ``static`` current is the same each t.

    float32 inputs use the numba kernel unless ``fast`` is False; ``smooth`` (gradient checks) uses numpy.
    With a workspace, u and s go to its buffers ``keys`` = (u key, s key).
    """
    shape = current.shape if static else current.shape[1:]
    if fast and not smooth and current.dtype == F32:
        from satasim_atsn.train.kernels import lif_forward_kernel

        m = int(np.prod(shape))
        cur2 = np.ascontiguousarray(current).reshape(1 if static else timesteps, m)
        us = np.empty((timesteps, m), dtype=F32) if ws is None else ws.get(keys[0], (timesteps, m))
        ss = np.empty((timesteps, m), dtype=F32) if ws is None else ws.get(keys[1], (timesteps, m))
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


def lif_backward(grad: np.ndarray, cache: tuple, fast: bool = True, ws: Workspace | None = None,
                 key: object = None) -> np.ndarray:
    """BPTT through the LIF (reset path included); returns dL/dI with the shape of the forward current."""
    us, ss, tau, vth, static = cache
    timesteps = us.shape[0]
    if fast and us.dtype == F32:
        from satasim_atsn.train.kernels import lif_backward_kernel

        m = us[0].size
        gshape = (1 if static else timesteps, m)
        gi = np.empty(gshape, dtype=F32) if ws is None else ws.get(key, gshape)
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
def maxpool_forward(x: np.ndarray, kernel: int, fast: bool = True, ws: Workspace | None = None,
                    keys: tuple = (None, None)) -> tuple[np.ndarray, tuple]:
    """Non-overlapping spike max-pooling (an OR for 0/1 spikes) over [..., H, W, C]; odd edges dropped.

    With a workspace, the output and the window positions go to its buffers ``keys``."""
    *lead, h, w, c = x.shape
    ho, wo = h // kernel, w // kernel
    if fast and kernel == 2 and x.dtype == F32:
        from satasim_atsn.train.kernels import maxpool2_forward_kernel

        frames = np.ascontiguousarray(x).reshape(-1, h, w, c)
        shape = (frames.shape[0], ho, wo, c)
        out = np.empty(shape, dtype=F32) if ws is None else ws.get(keys[0], shape)
        arg = np.empty(shape, dtype=np.int8) if ws is None else ws.get(keys[1], shape, np.int8)
        maxpool2_forward_kernel(frames, out, arg)
        return out.reshape(tuple(lead) + (ho, wo, c)), ("fast", arg, x.shape)
    xc = x[..., :ho * kernel, :wo * kernel, :].reshape(tuple(lead) + (ho, kernel, wo, kernel, c))
    win = np.moveaxis(xc, -4, -3).reshape(tuple(lead) + (ho, wo, kernel * kernel, c))
    arg = win.argmax(axis=-2)
    out = np.take_along_axis(win, arg[..., None, :], axis=-2)[..., 0, :]
    return out, (arg, x.shape, kernel)


def maxpool_backward(grad: np.ndarray, cache: tuple, ws: Workspace | None = None, key: object = None) -> np.ndarray:
    """Route each pooled gradient to the first maximal input of its window (into ``ws[key]`` if given)."""
    if isinstance(cache[0], str):
        from satasim_atsn.train.kernels import maxpool2_backward_kernel

        _, arg, shape = cache
        if ws is None:
            dx = np.zeros((arg.shape[0],) + tuple(shape[-3:]), dtype=F32)
        else:
            dx = ws.get(key, (arg.shape[0],) + tuple(shape[-3:]))
            dx.fill(0.0)
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


def strided_maxpool_forward(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, tuple]:
    """Spike max-pooling of k x k windows every ``stride`` over [..., H, W, C] (overlapping when stride < kernel,
    ``(H - k) // stride + 1`` rows as the workload's max-pool); the first maximal input of each window is kept."""
    *lead, h, w, c = x.shape
    frames = x.reshape(-1, h, w, c)
    win = np.lib.stride_tricks.sliding_window_view(frames, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    win = win.reshape(win.shape[:4] + (kernel * kernel,))  # [n, ho, wo, c, k*k]
    arg = win.argmax(axis=-1)
    out = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    return out.reshape(tuple(lead) + out.shape[1:]), ("strided", arg, x.shape, kernel, stride)


def strided_maxpool_backward(grad: np.ndarray, cache: tuple) -> np.ndarray:
    """Route each pooled gradient to the first maximal input of its window; overlapping windows add up."""
    _, arg, shape, kernel, stride = cache
    *lead, h, w, c = shape
    n, ho, wo, _ = arg.shape
    ni, i, j, ci = np.meshgrid(np.arange(n), np.arange(ho), np.arange(wo), np.arange(c), indexing="ij")
    rows, cols = stride * i + arg // kernel, stride * j + arg % kernel
    dx = np.zeros(n * h * w * c, dtype=grad.dtype)
    np.add.at(dx, ((ni * h + rows) * w + cols) * c + ci, grad.reshape(arg.shape))
    return dx.reshape(shape)


def avgpool_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Global average over H, W of [..., H, W, C] -> [..., C]."""
    return x.mean(axis=(-3, -2)), x.shape


def avgpool_backward(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Spread the gradient evenly over the pooled area."""
    h, w = shape[-3], shape[-2]
    return np.broadcast_to((grad / F32(h * w))[..., None, None, :], shape).astype(grad.dtype)
