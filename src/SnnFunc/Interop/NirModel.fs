/// The NIR graph as data: one record per NIR primitive with its stored fields (parameters as
/// tensors in their stored dtype), nested graphs and metadata.
///
/// This is the file layer below `SnnFunc.Nir` (which maps NIR to SnnFunc's Graph): it keeps what a
/// file says, not what SnnFunc would run. So units, discretisation and the peers' conventions
/// (README traps T1-T12) are not interpreted here; names are the Python field names in PascalCase.
namespace SnnFunc

/// A metadata value. NIR allows metadata on every node and reads it back as a nested dict; these
/// are the kinds h5py stores for plain Python and numpy values.
[<RequireQualifiedAccess>]
type NirValue =
    /// A Python str (a scalar UTF-8 string).
    | Text of string
    /// A Python int (a scalar int64; any stored integer type is read as this).
    | Int of int64
    /// A Python float (a scalar float64).
    | Float of float
    /// A Python or numpy bool (h5py's FALSE/TRUE enum).
    | Bool of bool
    /// A numpy float array (also a 0-d one), Float32 or Float64 as stored.
    | Array of Tensor
    /// A numpy integer array, written back as int64 (NIR's integer type).
    | IntArray of values: int64[] * shape: int[]
    /// A numpy bool array.
    | BoolArray of values: bool[] * shape: int[]
    /// A string array (or a list of str).
    | TextArray of values: string[] * shape: int[]
    /// A nested dict.
    | Group of Map<string, NirValue>

/// A node's metadata dict. Readers must not rely on it (NIR's rule); SnnFunc's exporter records its
/// conventions here (time unit, dt, discretisation) because readers ignore unknown metadata.
type NirMetadata = Map<string, NirValue>

/// Conv padding: explicit per spatial dimension, or PyTorch's "same" / "valid".
[<RequireQualifiedAccess>]
type NirPadding =
    | Explicit of int[]
    | Same
    | Valid

/// Input and Output: the shape of one sample, without a batch dimension.
type NirIO = { Shape: int[]; Metadata: NirMetadata }

/// y = W x + b. Weight (..., N_out, N_in), bias (N_out,).
type NirAffine =
    {
        Weight: Tensor
        Bias: Tensor
        Metadata: NirMetadata
    }

/// y = W x. Weight (..., N_out, N_in).
type NirLinear =
    {
        Weight: Tensor
        Metadata: NirMetadata
    }

/// y = x * scale, elementwise.
type NirScale =
    { Scale: Tensor; Metadata: NirMetadata }

/// z = 1 where x > threshold (strict), else 0.
type NirThreshold =
    {
        Threshold: Tensor
        Metadata: NirMetadata
    }

/// y(t) = x(t - delay), elementwise (ms in the current docs; see trap T12).
type NirDelay =
    { Delay: Tensor; Metadata: NirMetadata }

/// torch-style flatten of dims StartDim..EndDim, counted without the batch dimension.
/// InputType is the input shape; None when the file does not say (the reference reader allows it).
type NirFlatten =
    {
        InputType: int[] option
        StartDim: int
        EndDim: int
        Metadata: NirMetadata
    }

/// Conv1d and Conv2d. One record for both, so code over convolutions is written once: Stride,
/// Dilation, an explicit Padding and InputShape have one entry per spatial dimension (1 or 2),
/// although Conv1d stores them as scalars in the file. Weight (C_out, C_in / Groups, k...), bias
/// (C_out,). InputShape is the spatial input shape; None when absent (the reference writer cannot
/// write that, so neither does NirFile).
type NirConv =
    {
        InputShape: int[] option
        Weight: Tensor
        Stride: int[]
        Padding: NirPadding
        Dilation: int[]
        Groups: int
        Bias: Tensor
        Metadata: NirMetadata
    }

/// SumPool2d and AvgPool2d: two entries each.
type NirPool =
    {
        KernelSize: int[]
        Stride: int[]
        Padding: int[]
        Metadata: NirMetadata
    }

/// Integrator: dv/dt = R I.
type NirI = { R: Tensor; Metadata: NirMetadata }

/// Integrate-and-fire: dv/dt = R I; spike when v > VThreshold, then v <- VReset.
type NirIF =
    {
        R: Tensor
        VThreshold: Tensor
        VReset: Tensor
        Metadata: NirMetadata
    }

/// Leaky integrator: tau dv/dt = (VLeak - v) + R I.
type NirLI =
    {
        Tau: Tensor
        R: Tensor
        VLeak: Tensor
        Metadata: NirMetadata
    }

/// Leaky integrate-and-fire: LI plus threshold and reset to VReset.
type NirLIF =
    {
        Tau: Tensor
        R: Tensor
        VLeak: Tensor
        VThreshold: Tensor
        VReset: Tensor
        Metadata: NirMetadata
    }

/// Current-based LI: tau_syn dI/dt = -I + WIn S; tau_mem dv/dt = (VLeak - v) + R I. WIn is
/// elementwise.
type NirCubaLI =
    {
        TauSyn: Tensor
        TauMem: Tensor
        R: Tensor
        VLeak: Tensor
        WIn: Tensor
        Metadata: NirMetadata
    }

/// Current-based LIF: CubaLI plus threshold and reset to VReset.
type NirCubaLIF =
    {
        TauSyn: Tensor
        TauMem: Tensor
        R: Tensor
        VLeak: Tensor
        VThreshold: Tensor
        VReset: Tensor
        WIn: Tensor
        Metadata: NirMetadata
    }

/// A NIR node: one case per serialisable primitive of NIR (the type string in the file is the case
/// name, Graph is "NIRGraph"). Unknown types are not representable: reading one is an error that
/// names it, like the reference reader, because no backend could run it and passing it through
/// silently would change the network. Qualified access (NirNode.LIF) because the short case
/// names (Input, Linear, I, Graph ...) would shadow other types' cases wherever SnnFunc is opened.
[<RequireQualifiedAccess>]
type NirNode =
    | Input of NirIO
    | Output of NirIO
    | Affine of NirAffine
    | Linear of NirLinear
    | Scale of NirScale
    | Threshold of NirThreshold
    | Flatten of NirFlatten
    | Delay of NirDelay
    | Conv1d of NirConv
    | Conv2d of NirConv
    | SumPool2d of NirPool
    | AvgPool2d of NirPool
    | I of NirI
    | IF of NirIF
    | LI of NirLI
    | LIF of NirLIF
    | CubaLI of NirCubaLI
    | CubaLIF of NirCubaLIF
    | Graph of NirGraph

    /// The type string stored in the file ("CubaLIF", "NIRGraph", ...).
    member n.TypeName =
        match n with
        | NirNode.Input _ -> "Input"
        | NirNode.Output _ -> "Output"
        | NirNode.Affine _ -> "Affine"
        | NirNode.Linear _ -> "Linear"
        | NirNode.Scale _ -> "Scale"
        | NirNode.Threshold _ -> "Threshold"
        | NirNode.Flatten _ -> "Flatten"
        | NirNode.Delay _ -> "Delay"
        | NirNode.Conv1d _ -> "Conv1d"
        | NirNode.Conv2d _ -> "Conv2d"
        | NirNode.SumPool2d _ -> "SumPool2d"
        | NirNode.AvgPool2d _ -> "AvgPool2d"
        | NirNode.I _ -> "I"
        | NirNode.IF _ -> "IF"
        | NirNode.LI _ -> "LI"
        | NirNode.LIF _ -> "LIF"
        | NirNode.CubaLI _ -> "CubaLI"
        | NirNode.CubaLIF _ -> "CubaLIF"
        | NirNode.Graph _ -> "NIRGraph"

    /// The node's metadata (a nested graph's is its graph metadata).
    member n.Metadata =
        match n with
        | NirNode.Input p
        | NirNode.Output p -> p.Metadata
        | NirNode.Affine p -> p.Metadata
        | NirNode.Linear p -> p.Metadata
        | NirNode.Scale p -> p.Metadata
        | NirNode.Threshold p -> p.Metadata
        | NirNode.Flatten p -> p.Metadata
        | NirNode.Delay p -> p.Metadata
        | NirNode.Conv1d p
        | NirNode.Conv2d p -> p.Metadata
        | NirNode.SumPool2d p
        | NirNode.AvgPool2d p -> p.Metadata
        | NirNode.I p -> p.Metadata
        | NirNode.IF p -> p.Metadata
        | NirNode.LI p -> p.Metadata
        | NirNode.LIF p -> p.Metadata
        | NirNode.CubaLI p -> p.Metadata
        | NirNode.CubaLIF p -> p.Metadata
        | NirNode.Graph g -> g.Metadata

/// A NIR graph: named nodes (names are scoped per graph, so a subgraph may reuse "input") and
/// (source, target) edges in file order. Cycles (recurrence) and duplicate edges are allowed;
/// several edges into one node are summed by convention. Node order means nothing in NIR (h5py
/// lists groups by name), hence a Map.
and NirGraph =
    {
        Nodes: Map<string, NirNode>
        Edges: (string * string) list
        Metadata: NirMetadata
    }

/// A NIR file: the graph and the /version string the writer recorded (None when absent; the
/// reference reader ignores it).
type NirDocument =
    {
        Version: string option
        Graph: NirGraph
    }
