/// Building, converting, encoding into and decoding event buffers: from per-event times, from and
/// to time-stepped spike trains, latency codes, first-spike times and counts, batch slicing,
/// concatenation and merging.
namespace SnnFunc

open System

/// Options of `EventBuffer.latencyWith`: value u in [0, 1] spikes once at tEarly + u · (tLate − tEarly).
type LatencyOptions =
    {
        /// The spike time of the value 0, in seconds (non-negative).
        TEarly: float
        /// The spike time of the value 1, in seconds (non-negative; below TEarly inverts the code,
        /// so that large values spike early).
        TLate: float
        /// Values below it send no spike (None: every value spikes).
        Threshold: float option
        /// Some t: one more input neuron, appended after the values, spikes at t in every sample
        /// (the bias spike of the Yin-Yang setups; the population gets N + 1 neurons).
        BiasTime: float option
    }

/// Functions over event buffers (the companion of the type `EventBuffer`). Buffers hold events
/// sorted by (time, neuron); times are seconds. Functions marked "host" read concrete tensors and
/// are for preparing data and inspecting results; the others are tensor programs that work under
/// Ad.grad, Ad.jvp and Ad.vmap, with gradients through `Times` only (Neurons, Count and Overflow
/// are Int32 and carry none).
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module EventBuffer =

    let private fmt = Shape.format

    let private fail (op: string) (name: string) (message: string) : 'a = invalidArg name $"%s{op}: %s{message}"

    let private notNull (op: string) (name: string) (x: obj) =
        if isNull x then
            fail op name $"%s{name} is null"

    let private checkPopulation (op: string) (shape: int[]) =
        if isNull shape || shape.Length = 0 || shape |> Array.exists (fun d -> d <= 0) then
            let shown = if isNull shape then "null" else fmt shape
            fail op "shape" $"the population shape must have positive dimensions (at least one axis), got %s{shown}"

    let private checkCapacity (op: string) (capacity: int) =
        if capacity < 0 then
            fail op "capacity" $"the capacity must be non-negative, got %d{capacity}"

    let private checkFloat (op: string) (dtype: DType) =
        if not dtype.IsFloat then
            fail op "dtype" $"times must be Float32 or Float64, got %s{dtype.Name}"

    /// The flat index of a batch position, shown as [i; j] for messages.
    let private batchIndex (batch: int[]) (flat: int) =
        let idx = Array.zeroCreate batch.Length
        let mutable rest = flat

        for a in batch.Length - 1 .. -1 .. 0 do
            idx[a] <- rest % batch[a]
            rest <- rest / batch[a]

        fmt idx

    let private int32Full (shape: int[]) (value: int) =
        Tensor.Full(shape, float value, DType.Int32)

    /// `Times`, `Neurons` cut or padded (with +inf / -1) along the slot axis to `capacity`.
    let private fit (capacity: int) (times: Tensor) (neurons: Tensor) =
        let m = times.ShapeRef[times.Rank - 1]

        if m >= capacity then
            times.Narrow(-1, 0, capacity), neurons.Narrow(-1, 0, capacity)
        else
            let padShape = Array.append times.ShapeRef[.. times.Rank - 2] [| capacity - m |]

            Tensor.Concat([| times; Tensor.Full(padShape, Double.PositiveInfinity, times.DType) |], -1),
            Tensor.Concat([| neurons; int32Full padShape -1 |], -1)

    /// A buffer with no events.
    let empty (dtype: DType) (shape: int[]) (batch: int[]) (capacity: int) : EventBuffer =
        let op = "EventBuffer.empty"
        checkFloat op dtype
        checkPopulation op shape
        checkCapacity op capacity

        if isNull batch || batch |> Array.exists (fun d -> d < 0) then
            fail op "batch" $"the batch shape must have non-negative dimensions, got %A{batch}"

        let slots = Array.append batch [| capacity |]

        EventBuffer(Tensor.Full(slots, Double.PositiveInfinity, dtype), int32Full slots -1, int32Full batch 0, int32Full batch 0, shape)

    /// Sorts events [batch...; m] by (time, neuron), absent ones (time +inf or neuron -1) last, and
    /// fits them to the capacity, keeping the earliest: the core of `ofTimes` and `merge`. A tensor
    /// program: the sorting permutation comes from argsort (no gradient), the times are gathered
    /// through it (gradients reach the input times).
    let private sortAndFit (shape: int[]) (capacity: int) (times: Tensor) (neurons: Tensor) =
        let n = Shape.count shape
        let inf = Double.PositiveInfinity

        let absent =
            Tensor.Where(neurons.Lt 0.0, Tensor.OnesLike neurons, times.Eq(inf).Convert DType.Int32)

        let present = int32Full [||] 1 - absent
        let keyN = Tensor.Where(absent, int32Full [||] n, neurons)
        let keyT = Tensor.Where(absent, Tensor.Scalar(inf, times.DType), times)
        let byNeuron = keyN.Argsort -1
        let byTime = keyT.TakeAlongAxis(byNeuron, -1).Argsort -1
        let perm = byNeuron.TakeAlongAxis(byTime, -1)
        let sortedT = keyT.TakeAlongAxis(perm, -1)
        let sortedN = keyN.TakeAlongAxis(perm, -1)
        let sortedN = Tensor.Where(sortedN.Eq(float n), int32Full [||] -1, sortedN)
        let total = present.Sum(-1)
        let t, nn = fit capacity sortedT sortedN
        let cap = int32Full [||] capacity
        EventBuffer(t, nn, total.Minimum cap, (total - cap).Relu(), shape)

    /// ofTimes, with errors naming `op`.
    let private ofTimesAs (op: string) (shape: int[]) (capacity: int) (times: Tensor) (neurons: Tensor) : EventBuffer =
        notNull op "times" times
        notNull op "neurons" neurons
        checkPopulation op shape
        checkCapacity op capacity
        checkFloat op times.DType

        if times.Rank < 1 then
            fail op "times" $"times must be [batch...; events], got shape %s{fmt times.ShapeRef}"

        if neurons.DType <> DType.Int32 then
            fail op "neurons" $"neurons must be Int32, got %s{neurons.DType.Name}"

        if neurons.ShapeRef <> times.ShapeRef then
            fail op "neurons" $"times %s{fmt times.ShapeRef} and neurons %s{fmt neurons.ShapeRef} must have the same shape"

        let n = Shape.count shape

        if neurons.IsConcrete then
            let ns = neurons.ToInt32Array()

            match Array.tryFindIndex (fun i -> i < -1 || i >= n) ns with
            | Some i ->
                fail
                    op
                    "neurons"
                    $"neuron index %d{ns[i]} at flat position %d{i} is outside [0, %d{n}) (population %s{fmt shape}; -1 marks no event)"
            | None -> ()

            if times.IsConcrete then
                let ts = times.ToDoubleArray()

                let bad =
                    Array.init ts.Length id
                    |> Array.tryFind (fun i ->
                        ns[i] >= 0
                        && not (Double.IsPositiveInfinity ts[i])
                        && not (ts[i] >= 0.0 && Double.IsFinite ts[i]))

                match bad with
                | Some i ->
                    fail op "times" $"event times must be finite and >= 0 (or +inf for no event), got %.17g{ts[i]} at flat position %d{i}"
                | None -> ()

        if times.ShapeRef[times.Rank - 1] = 0 then
            empty times.DType shape times.ShapeRef[.. times.Rank - 2] capacity
        else
            sortAndFit shape capacity times neurons

    /// A buffer from per-event times [batch...; m] (float) and flat neuron indices [batch...; m]
    /// (Int32, row-major into `shape`), sorted by (time, neuron) (equal pairs in input order); an
    /// entry with neuron -1 or time +inf is no event. More than `capacity` events in a sample keep
    /// the earliest and count the rest in Overflow. Differentiable in the times (the sort is a
    /// gather). Concrete inputs are checked: neurons in [-1, N), event times finite and >= 0.
    let ofTimes (shape: int[]) (capacity: int) (times: Tensor) (neurons: Tensor) : EventBuffer =
        ofTimesAs "EventBuffer.ofTimes" shape capacity times neurons

    /// Host: a buffer with one batch axis from per-sample event lists (time in seconds, flat
    /// neuron index), in any order.
    let ofEvents (dtype: DType) (shape: int[]) (capacity: int) (events: (float * int)[][]) : EventBuffer =
        let op = "EventBuffer.ofEvents"
        notNull op "events" events
        checkFloat op dtype

        if events |> Array.exists isNull then
            fail op "events" "a sample's event list is null"

        let b = events.Length

        let m =
            if b = 0 then
                0
            else
                events |> Array.map Array.length |> Array.max

        let ts = Array.create (b * m) Double.PositiveInfinity
        let ns = Array.create (b * m) -1

        events
        |> Array.iteri (fun s row ->
            row
            |> Array.iteri (fun k (t, i) ->
                ts[s * m + k] <- t
                ns[s * m + k] <- i))

        let times = Tensor.FromArray(ts, [| b; m |])
        ofTimesAs op shape capacity (times.Convert dtype) (Tensor.FromArray(ns, [| b; m |]))

    /// Host: the events of a concrete buffer, per flat batch position, as (time, flat neuron).
    let toEvents (b: EventBuffer) : (float * int)[][] =
        notNull "EventBuffer.toEvents" "b" b

        if not (b.Times.IsConcrete && b.Neurons.IsConcrete && b.Count.IsConcrete) then
            fail "EventBuffer.toEvents" "b" "needs a concrete buffer (not one traced inside a transform)"

        let cap = b.Capacity

        let ts, ns, cs =
            b.Times.ToDoubleArray(), b.Neurons.ToInt32Array(), b.Count.ToInt32Array()

        cs
        |> Array.mapi (fun s c -> Array.init c (fun k -> ts[s * cap + k], ns[s * cap + k]))

    /// Host: time-stepped spikes [T; B; N...] (non-negative integer counts per step and neuron) to a
    /// buffer with batch [B] and population [N...]: c spikes at step k become c events at time
    /// k · dt (the start of the step, so `toDense` with the same dt gives the input back).
    let ofDense (spikes: Tensor) (dt: float) (capacity: int) : EventBuffer =
        let op = "EventBuffer.ofDense"
        notNull op "spikes" spikes
        checkCapacity op capacity

        if not spikes.DType.IsFloat then
            fail op "spikes" $"spikes must be Float32 or Float64 (the dtype of the times), got %s{spikes.DType.Name}"

        if not (dt > 0.0 && Double.IsFinite dt) then
            fail op "dt" $"dt must be positive and finite, got %.17g{dt}"

        if spikes.Rank < 3 then
            fail op "spikes" $"expects time-major spikes [T; B; N...], got shape %s{fmt spikes.ShapeRef}"

        if not spikes.IsConcrete then
            fail op "spikes" "needs concrete spikes (it prepares data; it is not differentiable)"

        let steps, batch = spikes.ShapeRef[0], spikes.ShapeRef[1]
        let shape = spikes.ShapeRef[2..]
        let n = Shape.count shape
        let v = spikes.ToDoubleArray()

        match Array.tryFindIndex (fun c -> not (c >= 0.0 && Double.IsFinite c && c = Math.Floor c)) v with
        | Some i -> fail op "spikes" $"spike counts must be non-negative integers, got %.17g{v[i]} at flat index %d{i}"
        | None -> ()

        let ts = Array.create (batch * capacity) Double.PositiveInfinity
        let ns = Array.create (batch * capacity) -1
        let counts = Array.zeroCreate batch
        let overflow = Array.zeroCreate batch

        for s in 0 .. batch - 1 do
            for k in 0 .. steps - 1 do
                for j in 0 .. n - 1 do
                    let c = int v[(k * batch + s) * n + j]

                    for _ in 1..c do
                        if counts[s] < capacity then
                            ts[s * capacity + counts[s]] <- float k * dt
                            ns[s * capacity + counts[s]] <- j
                            counts[s] <- counts[s] + 1
                        else
                            overflow[s] <- overflow[s] + 1

        EventBuffer(
            (Tensor.FromArray(ts, batch, capacity)).Convert spikes.DType,
            Tensor.FromArray(ns, batch, capacity),
            Tensor.FromArray(counts, batch),
            Tensor.FromArray(overflow, batch),
            shape
        )

    /// Host: the events binned to `steps` steps of `dt` seconds, as counts [T; batch...; shape...]
    /// in the dtype of Times: an event at t lands in step round(t / dt) (nearest step, as
    /// Encode.latency). An event past the last step is an error (give more steps). Not differentiable.
    let toDense (b: EventBuffer) (steps: int) (dt: float) : Tensor =
        let op = "EventBuffer.toDense"
        notNull op "b" b

        if steps <= 0 then
            fail op "steps" $"steps must be positive, got %d{steps}"

        if not (dt > 0.0 && Double.IsFinite dt) then
            fail op "dt" $"dt must be positive and finite, got %.17g{dt}"

        let events = toEvents b
        let n = Shape.count b.Shape
        let rows = events.Length
        let out = Array.zeroCreate<float> (steps * rows * n)

        events
        |> Array.iteri (fun s row ->
            for t, j in row do
                let k = Math.Round(t / dt)

                if not (k >= 0.0 && k < float steps) then
                    fail
                        op
                        "steps"
                        $"sample %s{batchIndex b.BatchShape s} has an event at t = %.17g{t} s, which falls in step %.0f{k}, outside the %d{steps} steps of %.17g{dt} s"

                let k = int k
                out[(k * rows + s) * n + j] <- out[(k * rows + s) * n + j] + 1.0)

        let shape = Array.concat [ [| steps |]; b.BatchShape; b.Shape ]
        (Tensor.FromArray(out, shape)).Convert b.Times.DType

    /// Linear latency coding straight to events: values x [batch...; N] in [0, 1]; value u spikes
    /// once at tEarly + u · (tLate − tEarly) (differentiable in x); see LatencyOptions for the
    /// threshold and the bias neuron. Capacity N (N + 1 with the bias), population [N] ([N + 1]).
    /// Concrete values must lie in [0, 1].
    let latencyWith (options: LatencyOptions) (x: Tensor) : EventBuffer =
        let op = "EventBuffer.latency"
        notNull op "x" x

        let time (name: string) (t: float) =
            if not (t >= 0.0 && Double.IsFinite t) then
                fail op name $"%s{name} must be finite and >= 0, got %.17g{t}"

        time "tEarly" options.TEarly
        time "tLate" options.TLate
        options.BiasTime |> Option.iter (time "biasTime")

        match options.Threshold with
        | Some th when Double.IsNaN th -> fail op "threshold" "the threshold is NaN"
        | _ -> ()

        checkFloat op x.DType

        if x.Rank < 1 then
            fail op "x" $"expects values [batch...; N], got shape %s{fmt x.ShapeRef}"

        if x.ShapeRef[x.Rank - 1] = 0 then
            fail op "x" $"expects at least one value per sample, got shape %s{fmt x.ShapeRef}"

        if x.IsConcrete then
            let v = x.ToDoubleArray()

            match Array.tryFindIndex (fun u -> not (u >= 0.0 && u <= 1.0)) v with
            | Some i -> fail op "x" $"values must be in [0, 1], got %.17g{v[i]} at flat index %d{i}"
            | None -> ()

        let t = options.TEarly + x * (options.TLate - options.TEarly)

        let t =
            match options.Threshold with
            | Some th -> Tensor.Where(x.Lt th, Tensor.Scalar(Double.PositiveInfinity, x.DType), t)
            | None -> t

        let batch = x.ShapeRef[.. x.Rank - 2]

        let t =
            match options.BiasTime with
            | Some tb -> Tensor.Concat([| t; Tensor.Full(Array.append batch [| 1 |], tb, x.DType) |], -1)
            | None -> t

        let m = t.ShapeRef[t.Rank - 1]
        let neurons = Tensor.Arange(m, DType.Int32).BroadcastTo(t.ShapeRef)
        sortAndFit [| m |] m t neurons

    /// Linear latency coding (every value spikes, no bias): u in [0, 1] spikes at
    /// tEarly + u · (tLate − tEarly). W&P's Yin-Yang code is `latency 0.0 30e-3` on the five inputs
    /// (x, y, 1 − x, 1 − y, bias 0) of Data.YinYang; tEarly = tMax, tLate = 0 gives tMax · (1 − u).
    let latency (tEarly: float) (tLate: float) (x: Tensor) : EventBuffer =
        latencyWith
            {
                TEarly = tEarly
                TLate = tLate
                Threshold = None
                BiasTime = None
            }
            x

    /// Flat neuron indices with the empty slots sent to the extra bucket N.
    let private bucketed (b: EventBuffer) =
        let n = Shape.count b.Shape
        n, Tensor.Where(b.Neurons.Lt 0.0, int32Full [||] n, b.Neurons)

    /// The time of each neuron's first (earliest) event, [batch...; N] with N the population's
    /// element count; +inf where a neuron has none. Differentiable in Times: the gradient reaches
    /// the earliest event of each neuron only (zero for the rest and for silent neurons, never
    /// NaN). Works under Ad.grad, Ad.jvp and Ad.vmap (the grouping is Int32 argsort and gathers).
    let firstSpikeTimes (b: EventBuffer) : Tensor =
        notNull "EventBuffer.firstSpikeTimes" "b" b
        let n, idx = bucketed b
        let batch = b.BatchShape
        let inf = Double.PositiveInfinity

        if b.Capacity = 0 then
            Tensor.Full(Array.append batch [| n |], inf, b.Times.DType)
        else
            // Group the slots by neuron, each group in time order: a stable sort by time, then a
            // stable sort of that by neuron.
            let byTime = b.Times.Argsort -1
            let byNeuron = idx.TakeAlongAxis(byTime, -1).Argsort -1
            let perm = byTime.TakeAlongAxis(byNeuron, -1)
            let sortedIdx = idx.TakeAlongAxis(perm, -1)
            let sortedT = b.Times.TakeAlongAxis(perm, -1)
            let before = Array.append batch [| 1 |]

            let previous =
                Tensor.Concat([| int32Full before -1; sortedIdx.Narrow(-1, 0, b.Capacity - 1) |], -1)

            // The head of each group, except the group of empty slots.
            let first = sortedIdx.Ne(previous) * sortedIdx.Lt(float n)
            let axis = batch.Length
            let picked = Tensor.Where(first, sortedT, Tensor.ZerosLike sortedT)
            let sums = picked.ScatterAdd(axis, sortedIdx, n + 1, axis).Narrow(-1, 0, n)

            let has =
                (first.Convert b.Times.DType).ScatterAdd(axis, sortedIdx, n + 1, axis).Narrow(-1, 0, n)

            Tensor.Where(has, sums, Tensor.Scalar(inf, b.Times.DType))

    /// The number of events of each neuron, [batch...; N] in the dtype of Times (no gradient).
    let spikeCounts (b: EventBuffer) : Tensor =
        notNull "EventBuffer.spikeCounts" "b" b
        let n, idx = bucketed b
        let axis = b.BatchShape.Length
        let ones = (idx.Lt(float n)).Convert b.Times.DType
        ones.ScatterAdd(axis, idx, n + 1, axis).Narrow(-1, 0, n)

    /// Host: raises an error naming the samples that lost events (Overflow > 0) and how many, with
    /// the capacity; does nothing for a buffer without overflow or one traced inside a transform.
    let checkNoOverflow (b: EventBuffer) : unit =
        notNull "EventBuffer.checkNoOverflow" "b" b

        if b.Overflow.IsConcrete then
            let o = b.Overflow.ToInt32Array()
            let bad = o |> Array.indexed |> Array.filter (fun (_, v) -> v > 0)

            if bad.Length > 0 then
                let shown =
                    bad
                    |> Array.truncate 10
                    |> Array.map (fun (i, v) -> $"sample %s{batchIndex b.BatchShape i} lost %d{v}")
                    |> String.concat ", "

                let more =
                    if bad.Length > 10 then
                        $" and %d{bad.Length - 10} more"
                    else
                        ""

                invalidOp
                    $"EventBuffer.checkNoOverflow: %d{bad.Length} of %d{o.Length} samples had more events than the capacity %d{b.Capacity}: %s{shown}%s{more} (raise the capacity)"

    /// Host: checks the invariants of a concrete buffer (for buffers built by hand or by a
    /// simulator): per sample 0 <= Count <= capacity and Overflow >= 0; the first Count slots hold
    /// neurons in [0, N) at finite times >= 0 in (time, neuron) order; the other slots hold -1 at
    /// +inf. Raises ArgumentException naming the sample, the slot and the values.
    let validate (b: EventBuffer) : unit =
        let op = "EventBuffer.validate"
        notNull op "b" b

        if
            not (
                b.Times.IsConcrete
                && b.Neurons.IsConcrete
                && b.Count.IsConcrete
                && b.Overflow.IsConcrete
            )
        then
            fail op "b" "needs a concrete buffer (not one traced inside a transform)"

        let n = Shape.count b.Shape
        let cap = b.Capacity
        let ts, ns = b.Times.ToDoubleArray(), b.Neurons.ToInt32Array()
        let cs, os = b.Count.ToInt32Array(), b.Overflow.ToInt32Array()

        for s in 0 .. cs.Length - 1 do
            let where = batchIndex b.BatchShape s

            let bad (message: string) =
                fail op "b" $"sample %s{where}: %s{message}"

            if cs[s] < 0 || cs[s] > cap then
                bad $"Count %d{cs[s]} is outside [0, %d{cap}]"

            if os[s] < 0 then
                bad $"Overflow %d{os[s]} is negative"

            for k in 0 .. cap - 1 do
                let t, i = ts[s * cap + k], ns[s * cap + k]

                if k < cs[s] then
                    if i < 0 || i >= n then
                        bad $"slot %d{k} holds neuron %d{i}, outside [0, %d{n})"

                    if not (t >= 0.0 && Double.IsFinite t) then
                        bad $"slot %d{k} holds time %.17g{t}; event times must be finite and >= 0"

                    if k > 0 then
                        let tp, ip = ts[s * cap + k - 1], ns[s * cap + k - 1]

                        if t < tp || (t = tp && i < ip) then
                            bad
                                $"slot %d{k} (t = %.17g{t}, neuron %d{i}) comes before slot %d{k - 1} (t = %.17g{tp}, neuron %d{ip}) in (time, neuron) order"
                elif i <> -1 || not (Double.IsPositiveInfinity t) then
                    bad $"slot %d{k} is past Count %d{cs[s]} but holds neuron %d{i} at t = %.17g{t} (empty slots hold -1 at +inf)"

    let private needBatch (op: string) (b: EventBuffer) =
        notNull op "b" b

        if b.BatchShape.Length = 0 then
            fail op "b" $"needs a buffer with a batch axis, got %s{b.ToString()}"

    /// The samples at the given indices of the first batch axis, in that order (may repeat).
    let take (indices: int[]) (b: EventBuffer) : EventBuffer =
        let op = "EventBuffer.take"
        needBatch op b
        notNull op "indices" indices
        let size = b.BatchShape[0]

        match Array.tryFind (fun i -> i < 0 || i >= size) indices with
        | Some i -> fail op "indices" $"index %d{i} is out of range for a batch of %d{size}"
        | None -> ()

        let g (t: Tensor) = t.Gather(0, indices)
        EventBuffer(g b.Times, g b.Neurons, g b.Count, g b.Overflow, b.Shape)

    /// `length` samples from `start` along the first batch axis.
    let slice (start: int) (length: int) (b: EventBuffer) : EventBuffer =
        let op = "EventBuffer.slice"
        needBatch op b
        let size = b.BatchShape[0]

        if start < 0 || length < 0 || start + length > size then
            fail op "start" $"samples %d{start} .. %d{start + length - 1} are outside a batch of %d{size}"

        let s (t: Tensor) = t.Narrow(0, start, length)
        EventBuffer(s b.Times, s b.Neurons, s b.Count, s b.Overflow, b.Shape)

    /// The buffers joined along the first batch axis; capacities may differ (the result has the
    /// largest, shorter ones padded with empty slots). Same population, dtype and other batch axes.
    let concat (buffers: EventBuffer seq) : EventBuffer =
        let op = "EventBuffer.concat"
        notNull op "buffers" buffers
        let bs = Seq.toArray buffers

        if bs.Length = 0 then
            fail op "buffers" "needs at least one buffer"

        for b in bs do
            needBatch op b

        let first = bs[0]

        for b in bs do
            if b.Shape <> first.Shape then
                fail op "buffers" $"populations differ: %s{fmt first.Shape} and %s{fmt b.Shape}"

            if b.Times.DType <> first.Times.DType then
                fail op "buffers" $"time dtypes differ: %s{first.Times.DType.Name} and %s{b.Times.DType.Name}"

            if b.BatchShape[1..] <> first.BatchShape[1..] then
                fail op "buffers" $"batch shapes %s{fmt first.BatchShape} and %s{fmt b.BatchShape} differ after the first axis"

        let cap = bs |> Array.map (fun b -> b.Capacity) |> Array.max
        let fitted = bs |> Array.map (fun b -> fit cap b.Times b.Neurons)
        let cat (ts: Tensor[]) = Tensor.Concat(ts, 0)

        EventBuffer(
            cat (Array.map fst fitted),
            cat (Array.map snd fitted),
            cat (bs |> Array.map (fun b -> b.Count)),
            cat (bs |> Array.map (fun b -> b.Overflow)),
            first.Shape
        )

    /// The sorted union of two buffers of the same population and batch shape: capacity the sum of
    /// theirs (nothing is lost), Overflow the sum of theirs; ties in time go by neuron, then `a`
    /// first. Differentiable in both buffers' times.
    let merge (a: EventBuffer) (b: EventBuffer) : EventBuffer =
        let op = "EventBuffer.merge"
        notNull op "a" a
        notNull op "b" b

        if a.Shape <> b.Shape then
            fail op "b" $"populations differ: %s{fmt a.Shape} and %s{fmt b.Shape}"

        if a.BatchShape <> b.BatchShape then
            fail op "b" $"batch shapes differ: %s{fmt a.BatchShape} and %s{fmt b.BatchShape}"

        if a.Times.DType <> b.Times.DType then
            fail op "b" $"time dtypes differ: %s{a.Times.DType.Name} and %s{b.Times.DType.Name}"

        let cap = a.Capacity + b.Capacity

        if cap = 0 then
            a
        else
            let times = Tensor.Concat([| a.Times; b.Times |], -1)
            let neurons = Tensor.Concat([| a.Neurons; b.Neurons |], -1)
            let m = sortAndFit a.Shape cap times neurons
            EventBuffer(m.Times, m.Neurons, m.Count, a.Overflow + b.Overflow, a.Shape)
