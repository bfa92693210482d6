/// Datasets as (inputs, labels) pairs, and deterministic shuffling and mini-batching driven by keys.
namespace SnnFunc.Data

open SnnFunc
open SnnFunc.RandomBits

/// A labelled data set: inputs `X` with the example axis first (`[n; ...]`) and one integer class
/// label per example.
type Dataset =
    {
        X: Tensor
        Labels: int[]
    }

    /// The number of examples.
    member d.Count = d.Labels.Length

/// A data set divided into a training and a test part.
type TrainTest = { Train: Dataset; Test: Dataset }

/// A data set divided into training, validation and test parts.
type TrainValidationTest =
    {
        Train: Dataset
        Validation: Dataset
        Test: Dataset
    }

/// How `Batching.batchesWith` cuts an epoch.
type BatchOptions =
    {
        /// Examples per batch (positive).
        BatchSize: int
        /// Leave out the last batch when it is smaller than BatchSize.
        DropLast: bool
        /// Visit the examples in a random order drawn from the key (false: in stored order).
        Shuffle: bool
    }

/// An unbounded stream of random 32-bit words from one key: word i is word i of
/// `RandomBits.bits key n` (block i/2 of Threefry on counter (i/2, 0)), produced lazily so that
/// rejection sampling can take as many words as it needs.
type internal WordStream(key: Key) =
    let mutable index = 0L
    let mutable spare = 0u

    /// The next word of the stream.
    member _.Next() : uint32 =
        let i = index
        index <- index + 1L

        if i % 2L = 0L then
            let struct (w0, w1) = threefry2x32 key (uint32 (i / 2L)) 0u
            spare <- w1
            w0
        else
            spare

    /// An integer uniform on [0, n) without bias (Lemire's multiply-and-reject method), n >= 1.
    member s.Below(n: int) : int =
        let n32 = uint32 n
        let mutable m = uint64 (s.Next()) * uint64 n32
        let mutable low = uint32 m

        if low < n32 then
            let threshold = (0u - n32) % n32 // 2^32 mod n: the size of the biased remainder

            while low < threshold do
                m <- uint64 (s.Next()) * uint64 n32
                low <- uint32 m

        int (m >>> 32)

/// Functions over data sets.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module Dataset =

    /// A data set from inputs `[n; ...]` and n labels; checks that the counts agree.
    let create (x: Tensor) (labels: int[]) : Dataset =
        if isNull (box x) then
            invalidArg "x" "Dataset.create: the inputs are null"

        if isNull labels then
            invalidArg "labels" "Dataset.create: the labels are null"

        if x.Rank = 0 then
            invalidArg "x" "Dataset.create: the inputs must have an example axis (rank >= 1), got a scalar"

        if x.Shape[0] <> labels.Length then
            invalidArg
                "labels"
                $"Dataset.create: the inputs have %d{x.Shape[0]} examples (shape %s{Shape.format x.Shape}) but there are %d{labels.Length} labels"

        { X = x; Labels = labels }

    /// The examples at the given indices, in that order (indices may repeat).
    let subset (indices: int[]) (d: Dataset) : Dataset =
        for i in indices do
            if i < 0 || i >= d.Count then
                invalidArg "indices" $"Dataset.subset: index %d{i} is out of range for %d{d.Count} examples"

        {
            X = Tensor.gather 0 indices d.X
            Labels = indices |> Array.map (fun i -> d.Labels[i])
        }

    /// The first n examples.
    let take (n: int) (d: Dataset) : Dataset =
        if n < 0 || n > d.Count then
            invalidArg "n" $"Dataset.take: cannot take %d{n} of %d{d.Count} examples"

        subset (Array.init n id) d

    /// The number of examples of each class 0 .. classes-1 (labels outside that range are ignored).
    let classCounts (classes: int) (d: Dataset) : int[] =
        let counts = Array.zeroCreate classes

        for l in d.Labels do
            if l >= 0 && l < classes then
                counts[l] <- counts[l] + 1

        counts

/// Deterministic shuffling and mini-batching: the same key always gives the same order, on any
/// machine. Use a new key per epoch, for example `Random.foldIn key epoch`.
[<RequireQualifiedAccess>]
module Batching =

    /// A random permutation of 0 .. n-1 (Fisher–Yates, each swap index drawn without bias from the
    /// key's word stream).
    let permutation (key: Key) (n: int) : int[] =
        if n < 0 then
            invalidArg "n" $"Batching.permutation: n must be non-negative, got %d{n}"

        let p = Array.init n id
        let words = WordStream key

        for i in n - 1 .. -1 .. 1 do
            let j = words.Below(i + 1)
            let t = p[i]
            p[i] <- p[j]
            p[j] <- t

        p

    /// The examples of a data set in a random order drawn from the key.
    let shuffle (key: Key) (d: Dataset) : Dataset =
        Dataset.subset (permutation key d.Count) d

    /// The number of batches in an epoch of n examples.
    let batchCount (batchSize: int) (dropLast: bool) (n: int) : int =
        if batchSize <= 0 then
            invalidArg "batchSize" $"Batching: the batch size must be positive, got %d{batchSize}"

        if dropLast then
            n / batchSize
        else
            (n + batchSize - 1) / batchSize

    /// The example indices of each batch of one epoch.
    let batchIndices (options: BatchOptions) (key: Key) (n: int) : int[][] =
        let count = batchCount options.BatchSize options.DropLast n

        let order =
            if options.Shuffle then
                permutation key n
            else
                Array.init n id

        Array.init count (fun b ->
            let start = b * options.BatchSize
            order[start .. min n (start + options.BatchSize) - 1])

    /// One epoch as (inputs, labels) batches: inputs `[b; ...]` gathered from the data set's rows,
    /// labels `int[b]`. The sequence is lazy (a batch is gathered when it is reached) and can be
    /// enumerated again with the same result.
    let batchesWith (options: BatchOptions) (key: Key) (d: Dataset) : seq<Tensor * int[]> =
        let batches = batchIndices options key d.Count

        seq {
            for idx in batches do
                Tensor.gather 0 idx d.X, idx |> Array.map (fun i -> d.Labels[i])
        }

    /// One shuffled epoch in batches of `batchSize`; the last batch may be smaller.
    let batches (key: Key) (batchSize: int) (d: Dataset) : seq<Tensor * int[]> =
        batchesWith
            {
                BatchSize = batchSize
                DropLast = false
                Shuffle = true
            }
            key
            d

    /// One shuffled epoch in batches of exactly `batchSize`; a smaller last batch is left out.
    let batchesDropLast (key: Key) (batchSize: int) (d: Dataset) : seq<Tensor * int[]> =
        batchesWith
            {
                BatchSize = batchSize
                DropLast = true
                Shuffle = true
            }
            key
            d

    /// The data set in stored order in batches of `batchSize` (for evaluation).
    let inOrder (batchSize: int) (d: Dataset) : seq<Tensor * int[]> =
        batchesWith
            {
                BatchSize = batchSize
                DropLast = false
                Shuffle = false
            }
            (keyOfSeed 0L)
            d
