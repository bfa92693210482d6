/// Spike events in continuous time: per sample, a fixed capacity of (time, neuron) pairs sorted by
/// time, with the count held and the count that did not fit. The type only; conversions, encoders
/// and decoders live in the Events module.
namespace SnnFunc

open System

/// The spikes of one population per sample, as events sorted by time (the design's `EventBuffer`).
///
/// - `Times` [batch...; capacity], float: spike times in seconds, ascending along the last axis,
///   `+inf` in the empty slots after the last event. Differentiable (gradients reach input spike
///   times and, from a simulation, everything a spike time depends on).
/// - `Neurons` [batch...; capacity], Int32: the flat index (row-major, into `Shape`) of the neuron
///   of each event, `-1` in empty slots.
/// - `Count` [batch...], Int32: the events held (slots 0 .. Count-1).
/// - `Overflow` [batch...], Int32: events that happened but did not fit — reported, never dropped
///   silently; a run can make any overflow an error.
/// - `Shape`: the population's (per-sample) shape, which `Neurons` index into.
///
/// A pytree with four leaves (Times, Neurons, Count, Overflow; Shape is static), so buffers pass
/// through Ad.grad, Ad.vmap (a batch axis in front) and checkpoints like records of tensors.
[<Sealed>]
type EventBuffer(times: Tensor, neurons: Tensor, count: Tensor, overflow: Tensor, shape: int[]) =
    do
        let fail (message: string) =
            invalidArg "times" $"EventBuffer: %s{message}"

        if isNull times || isNull neurons || isNull count || isNull overflow then
            fail "Times, Neurons, Count and Overflow must all be given"

        if isNull shape || shape |> Array.exists (fun d -> d <= 0) then
            fail $"the population shape must have positive dimensions, got %A{shape}"

        if times.Rank < 1 then
            fail $"Times must be [batch...; capacity], got shape %s{Shape.format times.ShapeRef}"

        if not times.DType.IsFloat then
            fail $"Times must be Float32 or Float64, got %A{times.DType}"

        if neurons.ShapeRef <> times.ShapeRef then
            fail $"Neurons has shape %s{Shape.format neurons.ShapeRef}, Times %s{Shape.format times.ShapeRef}; they must agree"

        let batch = times.ShapeRef[.. times.Rank - 2]

        for name, t in [ "Neurons", neurons; "Count", count; "Overflow", overflow ] do
            if t.DType <> DType.Int32 then
                fail $"%s{name} must be Int32, got %A{t.DType}"

        for name, t in [ "Count", count; "Overflow", overflow ] do
            if t.ShapeRef <> batch then
                fail $"%s{name} has shape %s{Shape.format t.ShapeRef}, but the batch axes of Times are %s{Shape.format batch}"

    let shape = Array.copy shape

    member _.Times = times
    member _.Neurons = neurons
    member _.Count = count
    member _.Overflow = overflow
    member _.Shape = Array.copy shape

    /// The slots per sample.
    member _.Capacity = times.ShapeRef[times.Rank - 1]

    /// The batch axes (all but the last of Times).
    member _.BatchShape = times.ShapeRef[.. times.Rank - 2]

    /// The same events with other times (e.g. shifted, or a traced version).
    member _.WithTimes(t: Tensor) =
        EventBuffer(t, neurons, count, overflow, shape)

    override _.ToString() =
        $"EventBuffer(batch %s{Shape.format times.ShapeRef[.. times.Rank - 2]}, capacity %d{times.ShapeRef[times.Rank - 1]}, population %s{Shape.format shape})"

    interface IKeyedTree with
        member _.Children = [| box times; box neurons; box count; box overflow |]

        member _.Rebuild(children: obj[]) =
            box (EventBuffer(children[0] :?> Tensor, children[1] :?> Tensor, children[2] :?> Tensor, children[3] :?> Tensor, shape))

        member _.ChildKeys =
            [| "Times"; "Neurons"; "Count"; "Overflow" |]
            |> Array.map (fun k -> KeyPath [ PathKey.Field k ])
