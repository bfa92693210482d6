/// Shapes: validation, element counts, strides, axes and NumPy broadcasting, with errors that name
/// the operation and the shapes involved.
module SnnFunc.Shape

open System

/// Formats a shape the way every message in SnnFunc shows it: "[64; 246]", "[]" for a scalar.
let format (shape: int[]) = "[" + String.Join("; ", shape) + "]"

/// Raises an ArgumentException whose message starts with the operation's name.
let fail (op: string) (message: string) : 'a =
    raise (ArgumentException($"{op}: {message}"))

/// Checks that a shape is usable (non-null, no negative dimension, element count fits an int) and
/// returns its element count. The product of the non-zero dimensions must fit an int too, whatever
/// their order: strides and the counts of sub-shapes are ints, even when a zero dimension makes the
/// element count 0 (NumPy has the same rule).
let checkedCount (op: string) (shape: int[]) =
    if isNull shape then
        fail op "shape is null"

    for d in shape do
        if d < 0 then
            fail op $"shape %s{format shape} has a negative dimension"

    let mutable n = 1L

    for d in shape do
        if d > 0 then
            n <- n * int64 d

            if n > int64 Int32.MaxValue then
                if Array.contains 0 shape then
                    fail op $"shape %s{format shape} has non-zero dimensions whose product exceeds %d{Int32.MaxValue}"
                else
                    fail op $"shape %s{format shape} has more than %d{Int32.MaxValue} elements"

    if Array.contains 0 shape then 0 else int n

/// Number of elements of a shape that is known to be valid.
let count (shape: int[]) =
    let mutable n = 1

    for d in shape do
        n <- n * d

    n

/// Row-major (C-order) strides, in elements.
let strides (shape: int[]) =
    let s = Array.zeroCreate shape.Length
    let mutable acc = 1

    for i in shape.Length - 1 .. -1 .. 0 do
        s[i] <- acc
        acc <- acc * shape[i]

    s

/// Turns a possibly negative axis (-1 = last) into an index in [0, rank), or fails naming the op.
let normAxis (op: string) (rank: int) (axis: int) =
    let a = if axis < 0 then axis + rank else axis

    if a < 0 || a >= rank then
        fail op $"axis %d{axis} is out of range for a tensor of rank %d{rank}"

    a

/// Normalises a set of axes: each in range, no duplicates; returned sorted ascending.
let normAxes (op: string) (rank: int) (axes: int[]) =
    if isNull axes then
        fail op "axes is null"

    let normalised = axes |> Array.map (normAxis op rank) |> Array.sort

    for i in 1 .. normalised.Length - 1 do
        if normalised[i] = normalised[i - 1] then
            fail op $"axis %d{normalised[i]} is repeated in %s{format axes}"

    normalised

/// The NumPy broadcast of two shapes, or an error naming the op and both shapes.
let broadcast (op: string) (a: int[]) (b: int[]) =
    let rank = max a.Length b.Length
    let result = Array.zeroCreate rank

    for i in 0 .. rank - 1 do
        let da = if i < rank - a.Length then 1 else a[i - (rank - a.Length)]
        let db = if i < rank - b.Length then 1 else b[i - (rank - b.Length)]

        result[i] <-
            if da = db then
                da
            elif da = 1 then
                db
            elif db = 1 then
                da
            else
                fail op $"shapes %s{format a} and %s{format b} cannot be broadcast together"

    result

/// True when `source` broadcasts to `target` (NumPy rules, source rank not larger).
let broadcastsTo (source: int[]) (target: int[]) =
    source.Length <= target.Length
    && Array.forall2 (fun s t -> s = t || s = 1) source target[target.Length - source.Length ..]

/// Strides of `source` read as if broadcast to a shape of rank `rank` (0 on broadcast dimensions).
let broadcastStrides (source: int[]) (rank: int) =
    let s = strides source
    let result = Array.zeroCreate rank
    let offset = rank - source.Length

    for i in 0 .. source.Length - 1 do
        result[offset + i] <- if source[i] = 1 then 0 else s[i]

    result
