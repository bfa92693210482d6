/// The base of custom kernels (fused layers, event solvers, emulator passes): a loop over concrete
/// buffers with a twin made of tensor operations, and the helpers their batching rules share.
namespace SnnFunc

open System

/// A custom function whose evaluation is a kernel on concrete buffers. Its rules (Jvp, Transpose,
/// Batch) apply other custom functions, so every transform reaches a kernel with concrete data,
/// but where a call still meets a tracer (a transform that has no rule for it) the twin, the same
/// function composed of tensor operations, computes it instead: fast when concrete, correct when traced.
[<AbstractClass>]
type KernelFn(name: string) =
    inherit CustomFn(name)

    /// The function on concrete arguments.
    abstract Kernel: args: Tensor[] -> Tensor[]

    /// The same function as tensor operations, valid for traced arguments.
    abstract Twin: args: Tensor[] -> Tensor[]

    [<ThreadStatic; DefaultValue>]
    static val mutable private twinCalls: int

    /// How many times, on the calling thread, a kernel met a traced argument and ran its twin: a
    /// diagnostic for tests and profiling (rules keep it at zero under the transforms they cover).
    static member TwinCallsOnThisThread = KernelFn.twinCalls

    /// The twin, counted as a fallback (for rules that differentiate the twin where the kernels
    /// have no rule, e.g. some second-order derivatives).
    member k.CountedTwin(args: Tensor[]) =
        KernelFn.twinCalls <- KernelFn.twinCalls + 1
        k.Twin args

    override k.Call args =
        if args |> Array.forall (fun a -> a.IsConcrete) then
            k.Kernel args
        else
            k.CountedTwin args

    /// Kernel rules compute their primal outputs by applying kernels, which lower transforms see.
    override _.JvpPrimalsDispatched = true

/// Helpers of batching rules: fold the vmap axis into an axis a kernel already loops over.
module KernelBatching =

    /// `x` with the batch (of size `batchSize`) at `axis`: moved there from axis 0 when `batched`,
    /// else broadcast in as a new axis.
    let moveBatchTo (axis: int) (batchSize: int) (batched: bool) (x: Tensor) =
        if batched then
            if axis = 0 then
                x
            else
                let r = x.Rank

                x.Permute(
                    Array.init r (fun i ->
                        if i < axis then i + 1
                        elif i = axis then 0
                        else i)
                )
        else
            let shape = x.Shape
            x.Unsqueeze(axis).BroadcastTo(Array.concat [ shape[.. axis - 1]; [| batchSize |]; shape[axis..] ])

    /// `x` with its axis `axis` moved to the front (undoing moveBatchTo).
    let moveToFront (axis: int) (x: Tensor) =
        if axis = 0 then
            x
        else
            let r = x.Rank

            x.Permute(
                Array.init r (fun i ->
                    if i = 0 then axis
                    elif i <= axis then i - 1
                    else i)
            )

    /// The batching rule of a time-major kernel whose arguments and outputs are all [T; ...] with
    /// independent trailing (neuron) axes: the batch becomes axis 1, the kernel runs once on the
    /// whole batch, and the outputs get it back at 0. Unbatched arguments are broadcast.
    let timeMajor (apply: Tensor[] -> Tensor[]) (args: Tensor[]) (batched: bool[]) (batchSize: int) =
        let folded =
            Array.map2 (fun (a: Tensor) b -> moveBatchTo 1 batchSize b a) args batched

        apply folded |> Array.map (moveToFront 1)
