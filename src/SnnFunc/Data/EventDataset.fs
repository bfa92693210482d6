/// Labelled data sets of event inputs (one EventBuffer with the example axis first) and their
/// shuffled mini-batches, cut as Batching cuts dense data sets.
namespace SnnFunc.Data

open SnnFunc
open SnnFunc.RandomBits

/// A labelled data set of event inputs: `Events` with batch axes [n] (Times [n; capacity]) and one
/// integer class label per example.
type EventDataset =
    {
        Events: EventBuffer
        Labels: int[]
    }

    /// The number of examples.
    member d.Count = d.Labels.Length

/// Functions over event data sets.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module EventDataset =

    /// A data set from events with one batch axis [n] and n labels.
    let create (events: EventBuffer) (labels: int[]) : EventDataset =
        if isNull (box events) then
            invalidArg "events" "EventDataset.create: the events are null"

        if isNull labels then
            invalidArg "labels" "EventDataset.create: the labels are null"

        if events.BatchShape.Length <> 1 then
            invalidArg
                "events"
                $"EventDataset.create: the events must have one batch (example) axis, got batch shape %s{Shape.format events.BatchShape}"

        if events.BatchShape[0] <> labels.Length then
            invalidArg
                "labels"
                $"EventDataset.create: the events have %d{events.BatchShape[0]} examples but there are %d{labels.Length} labels"

        { Events = events; Labels = labels }

    /// A dense data set encoded to events, e.g. `ofDataset (EventBuffer.latency 0.0 30e-3) yinYang`.
    let ofDataset (encode: Tensor -> EventBuffer) (d: Dataset) : EventDataset = create (encode d.X) d.Labels

    /// The examples at the given indices, in that order (indices may repeat).
    let subset (indices: int[]) (d: EventDataset) : EventDataset =
        if isNull indices then
            invalidArg "indices" "EventDataset.subset: the indices are null"

        for i in indices do
            if i < 0 || i >= d.Count then
                invalidArg "indices" $"EventDataset.subset: index %d{i} is out of range for %d{d.Count} examples"

        {
            Events = EventBuffer.take indices d.Events
            Labels = indices |> Array.map (fun i -> d.Labels[i])
        }

    /// The first n examples.
    let take (n: int) (d: EventDataset) : EventDataset =
        if n < 0 || n > d.Count then
            invalidArg "n" $"EventDataset.take: cannot take %d{n} of %d{d.Count} examples"

        subset (Array.init n id) d

    /// The examples in a random order drawn from the key (Batching.permutation).
    let shuffle (key: Key) (d: EventDataset) : EventDataset =
        subset (Batching.permutation key d.Count) d

    /// One epoch as (events, labels) batches, cut by Batching.batchIndices (so the same key and
    /// options give the same example order as a dense data set of the same size). Lazy and
    /// repeatable.
    let batchesWith (options: BatchOptions) (key: Key) (d: EventDataset) : seq<EventBuffer * int[]> =
        let batches = Batching.batchIndices options key d.Count

        seq {
            for idx in batches do
                EventBuffer.take idx d.Events, idx |> Array.map (fun i -> d.Labels[i])
        }

    /// One shuffled epoch in batches of `batchSize`; the last batch may be smaller.
    let batches (key: Key) (batchSize: int) (d: EventDataset) : seq<EventBuffer * int[]> =
        batchesWith
            {
                BatchSize = batchSize
                DropLast = false
                Shuffle = true
            }
            key
            d

    /// The data set in stored order in batches of `batchSize` (for evaluation).
    let inOrder (batchSize: int) (d: EventDataset) : seq<EventBuffer * int[]> =
        batchesWith
            {
                BatchSize = batchSize
                DropLast = false
                Shuffle = false
            }
            (keyOfSeed 0L)
            d
