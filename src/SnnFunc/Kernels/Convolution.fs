/// The public entry points of the convolution kernels on concrete buffers.
namespace SnnFunc.Kernels

/// The convolution products on concrete buffers (row-major NCHW / OIHW; every output entry written).
[<AbstractClass; Sealed>]
type ConvKernels =
    /// y [batch; O; OutH; OutW] = conv(x [batch; C; H; W], w [O; C/groups; kh; kw]) + bias [O] (bias may be null).
    static member Forward(cg: ConvGeometry, batch: int, x: float32[], w: float32[], bias: float32[], y: float32[]) =
        ConvForward.forwardS (cg, batch, x, w, bias, y)

    static member Forward(cg: ConvGeometry, batch: int, x: float[], w: float[], bias: float[], y: float[]) =
        ConvForward.forwardD (cg, batch, x, w, bias, y)

    /// dx [batch; C; H; W], the transposed convolution of dy [batch; O; OutH; OutW] with w.
    static member BackwardData(cg: ConvGeometry, batch: int, w: float32[], dy: float32[], dx: float32[]) =
        ConvForward.backwardDataS (cg, batch, w, dy, dx)

    static member BackwardData(cg: ConvGeometry, batch: int, w: float[], dy: float[], dx: float[]) =
        ConvForward.backwardDataD (cg, batch, w, dy, dx)

    /// dw [O; C/groups; kh; kw] = Σ over the batch of dy's correlation with x's patches.
    static member BackwardWeight(cg: ConvGeometry, batch: int, x: float32[], dy: float32[], dw: float32[]) =
        ConvWeightGradient.backwardWeightS (cg, batch, x, dy, dw)

    static member BackwardWeight(cg: ConvGeometry, batch: int, x: float[], dy: float[], dw: float[]) =
        ConvWeightGradient.backwardWeightD (cg, batch, x, dy, dw)
