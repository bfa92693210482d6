/// The sizes of sliding-window operations: a window over one input plane, where patch matrices lie,
/// and a convolution's groups and output channels.
namespace SnnFunc.Kernels

/// The geometry of a sliding window over one [H; W] plane (1-d: H = 1 and a 1-row kernel): kernel
/// extent, stride, zero padding on both sides, dilation, and the output extent OutH × OutW
/// (out = (in + 2 pad - dilation (kernel - 1) - 1) / stride + 1). Validated by the caller.
[<Struct>]
type WindowGeometry =
    {
        Channels: int
        Height: int
        Width: int
        KernelH: int
        KernelW: int
        StrideH: int
        StrideW: int
        PadH: int
        PadW: int
        DilationH: int
        DilationW: int
        OutH: int
        OutW: int
    }

    /// Rows of one sample's patch matrix: Channels · KernelH · KernelW.
    member g.Rows = g.Channels * g.KernelH * g.KernelW
    /// Columns of one sample's patch matrix (output positions): OutH · OutW.
    member g.Positions = g.OutH * g.OutW

/// Where a sample's patch matrix lies in the buffer: element (row r, position l) of sample n is at
/// n · SampleStride + r · RowStride + l. [N; rows; positions] (PyTorch's unfold) has SampleStride =
/// rows · positions and RowStride = positions; [rows; N; positions] (one GEMM over the whole
/// batch) has SampleStride = positions and RowStride = N · positions.
[<Struct>]
type PatchLayout = { SampleStride: int; RowStride: int }

/// The sizes of a convolution: the window over each input plane, the groups (input channels,
/// output channels and weight rows split into that many independent blocks) and the output channels.
[<Struct>]
type ConvGeometry =
    {
        Window: WindowGeometry
        Groups: int
        OutChannels: int
    }

    /// Input channels per group.
    member g.GroupChannels = g.Window.Channels / g.Groups
    /// Patch rows per group (input channels per group · kernel size): the inner dimension.
    member g.GroupRows = g.GroupChannels * g.Window.KernelH * g.Window.KernelW
    /// Output channels per group.
    member g.GroupOutputs = g.OutChannels / g.Groups
