/// Event buffers built, converted, encoded and decoded (EventBuffer module): against naive
/// references written here, gradients by hand and by finite differences in Float64, under grad,
/// jvp and vmap, and their errors.
module SnnFunc.Tests.EventCodingTests

open System
open Xunit
open SnnFunc
open SnnFunc.Data
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.AdTestUtil

let private inf = Double.PositiveInfinity
let private nan = Double.NaN

let private ints (shape: int[]) (data: int[]) = Tensor.FromArray(data, shape)

/// Random events [batch; m]: times on a coarse grid (so ties happen), neurons in [-1, n), some
/// times +inf.
let private randomEvents (rng: Random) (batch: int[]) (m: int) (n: int) =
    let count = Shape.count batch * m

    let times =
        Array.init count (fun _ -> if rng.Next 8 = 0 then inf else float (rng.Next 6) * 0.25)

    let neurons = Array.init count (fun _ -> rng.Next(-1, n))
    let shape = Array.append batch [| m |]
    Tensor.FromArray(times, shape), ints shape neurons

/// The reference of ofTimes per flat sample: present events sorted by (time, neuron, position),
/// the first `capacity` kept, and the number held and lost.
let private referenceSort (capacity: int) (m: int) (times: float[]) (neurons: int[]) (s: int) =
    let events =
        [
            for k in 0 .. m - 1 do
                let t, i = times[s * m + k], neurons[s * m + k]

                if i >= 0 && not (Double.IsPositiveInfinity t) then
                    yield t, i, k
        ]
        |> List.sort

    let kept = events |> List.truncate capacity
    kept, events.Length - kept.Length

let private checkAgainstReference (capacity: int) (m: int) (times: Tensor) (neurons: Tensor) (b: EventBuffer) =
    let ts, ns = times.ToDoubleArray(), neurons.ToInt32Array()
    let bt, bn = b.Times.ToDoubleArray(), b.Neurons.ToInt32Array()
    let counts, overflow = b.Count.ToInt32Array(), b.Overflow.ToInt32Array()

    for s in 0 .. counts.Length - 1 do
        let kept, lost = referenceSort capacity m ts ns s
        Assert.Equal(kept.Length, counts[s])
        Assert.Equal(lost, overflow[s])

        for k in 0 .. capacity - 1 do
            match List.tryItem k kept with
            | Some(t, i, _) ->
                Assert.Equal(t, bt[s * capacity + k])
                Assert.Equal(i, bn[s * capacity + k])
            | None ->
                Assert.Equal(inf, bt[s * capacity + k])
                Assert.Equal(-1, bn[s * capacity + k])

// ---------------------------------------------------------------------------------------------
// Building

[<Fact>]
let ``ofEvents sorts by time then neuron and keeps the earliest events`` () =
    let b =
        EventBuffer.ofEvents Float64 [| 3 |] 4 [| [| 0.3, 1; 0.1, 2; 0.1, 0; 0.2, 1; 0.5, 2 |]; [||]; [| 0.0, 2 |] |]

    assertSameValues "times" [| 0.1; 0.1; 0.2; 0.3; inf; inf; inf; inf; 0.0; inf; inf; inf |] (b.Times.ToDoubleArray())
    Assert.Equal<int[]>([| 0; 2; 1; 1; -1; -1; -1; -1; 2; -1; -1; -1 |], b.Neurons.ToInt32Array())
    Assert.Equal<int[]>([| 4; 0; 1 |], b.Count.ToInt32Array())
    Assert.Equal<int[]>([| 1; 0; 0 |], b.Overflow.ToInt32Array())
    Assert.Equal<int[]>([| 3 |], b.Shape)
    Assert.Equal<(float * int)[][]>([| [| 0.1, 0; 0.1, 2; 0.2, 1; 0.3, 1 |]; [||]; [| 0.0, 2 |] |], EventBuffer.toEvents b)

[<Fact>]
let ``ofTimes equals a naive sort for any batch shape, ties and capacity`` () =
    forAllSeeds 20 (fun seed ->
        let rng = Random seed
        let batch = [| rng.Next(1, 3); rng.Next(1, 4) |]
        let m = rng.Next(1, 9)
        let capacity = rng.Next(0, 10)
        let times, neurons = randomEvents rng batch m 4
        let b = EventBuffer.ofTimes [| 2; 2 |] capacity times neurons
        Assert.Equal<int[]>(Array.append batch [| capacity |], b.Times.Shape)
        Assert.Equal<int[]>(batch, b.Count.Shape)
        checkAgainstReference capacity m times neurons b)

[<Fact>]
let ``ofTimes under vmap equals ofTimes on the batch`` () =
    let rng = Random 7
    let times, neurons = randomEvents rng [| 4 |] 6 3
    let whole = EventBuffer.ofTimes [| 3 |] 5 times neurons

    let mapped =
        Ad.vmap (fun (tn: Tensor[]) -> EventBuffer.ofTimes [| 3 |] 5 tn[0] tn[1]) [| times; neurons |]

    assertSameValues "times" (whole.Times.ToDoubleArray()) (mapped.Times.ToDoubleArray())
    Assert.Equal<int[]>(whole.Neurons.ToInt32Array(), mapped.Neurons.ToInt32Array())
    Assert.Equal<int[]>(whole.Count.ToInt32Array(), mapped.Count.ToInt32Array())
    Assert.Equal<int[]>(whole.Overflow.ToInt32Array(), mapped.Overflow.ToInt32Array())

[<Fact>]
let ``ofTimes passes gradients to the input times through the sort`` () =
    let times = t64 [| 1; 4 |] [ 0.4; 0.1; 0.3; 0.2 ]
    let neurons = ints [| 1; 4 |] [| 0; 1; 2; 3 |]
    // Capacity 3 keeps 0.1, 0.2, 0.3; weight the slots 1, 10, 100.
    let w = t64 [| 1; 3 |] [ 1.0; 10.0; 100.0 ]

    let g =
        Ad.grad (fun (t: Tensor) -> ((EventBuffer.ofTimes [| 4 |] 3 t neurons).Times * w).Sum()) times

    assertSameValues "d/dt" [| 0.0; 1.0; 100.0; 10.0 |] (g.ToDoubleArray())

[<Fact>]
let ``ofTimes, ofEvents and empty reject bad input with the operation and the value`` () =
    let t = t64 [| 1; 2 |] [ 0.1; 0.2 ]
    assertThrowsArg [ "EventBuffer.ofTimes"; "index 5"; "[0, 3)" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t (ints [| 1; 2 |] [| 0; 5 |]))
    assertThrowsArg [ "EventBuffer.ofTimes"; "index -2" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t (ints [| 1; 2 |] [| -2; 0 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "finite and >= 0"; "-0.5" ] (fun () ->
        EventBuffer.ofTimes [| 3 |] 2 (t64 [| 1; 2 |] [ -0.5; 0.2 ]) (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "NaN" ] (fun () ->
        EventBuffer.ofTimes [| 3 |] 2 (t64 [| 1; 2 |] [ nan; 0.2 ]) (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "[1; 2]"; "[2]" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t (ints [| 2 |] [| 0; 1 |]))
    assertThrowsArg [ "EventBuffer.ofTimes"; "Int32" ] (fun () -> EventBuffer.ofTimes [| 3 |] 2 t t)
    assertThrowsArg [ "EventBuffer.ofTimes"; "capacity"; "-1" ] (fun () -> EventBuffer.ofTimes [| 3 |] -1 t (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofTimes"; "positive dimensions" ] (fun () ->
        EventBuffer.ofTimes [| 0 |] 2 t (ints [| 1; 2 |] [| 0; 1 |]))

    assertThrowsArg [ "EventBuffer.ofEvents"; "index 3" ] (fun () -> EventBuffer.ofEvents Float32 [| 3 |] 2 [| [| 0.1, 3 |] |])
    assertThrowsArg [ "EventBuffer.empty"; "int32" ] (fun () -> EventBuffer.empty DType.Int32 [| 3 |] [| 2 |] 4)

    // +inf is "no event" and is allowed, whatever its neuron.
    let b =
        EventBuffer.ofTimes [| 3 |] 2 (t64 [| 1; 2 |] [ inf; 0.2 ]) (ints [| 1; 2 |] [| 0; 1 |])

    Assert.Equal<int[]>([| 1 |], b.Count.ToInt32Array())

[<Fact>]
let ``empty has no events`` () =
    let b = EventBuffer.empty Float32 [| 2; 3 |] [| 4 |] 5
    Assert.Equal<int[]>([| 4; 5 |], b.Times.Shape)
    Assert.True(b.Times.ToDoubleArray() |> Array.forall Double.IsPositiveInfinity)
    Assert.True(b.Neurons.ToInt32Array() |> Array.forall ((=) -1))
    Assert.Equal<int[]>([| 0; 0; 0; 0 |], b.Count.ToInt32Array())
    assertSameValues "first" (Array.create 24 inf) ((EventBuffer.firstSpikeTimes b).ToDoubleArray())

// ---------------------------------------------------------------------------------------------
// Dense conversion

[<Fact>]
let ``toDense of ofDense gives the spike counts back`` () =
    forAllSeeds 10 (fun seed ->
        let rng = Random seed
        let shape = [| rng.Next(1, 6); rng.Next(1, 4); 2; rng.Next(1, 3) |]

        let counts =
            Array.init (Shape.count shape) (fun _ -> if rng.Next 3 = 0 then float (rng.Next(1, 3)) else 0.0)

        let spikes = Tensor.FromArray(counts, shape)
        let dt = 1e-3
        let b = EventBuffer.ofDense spikes dt 64
        Assert.Equal<int[]>(shape[2..], b.Shape)
        Assert.True(b.Overflow.ToInt32Array() |> Array.forall ((=) 0))
        assertSameValues "round trip" counts ((EventBuffer.toDense b shape[0] dt).ToDoubleArray())

        // The times are k · dt, sorted.
        for row in EventBuffer.toEvents b do
            for t, _ in row do
                Assert.Equal(Math.Round(t / dt) * dt, t)

            Assert.True(row |> Array.pairwise |> Array.forall (fun (a, c) -> a <= c)))

[<Fact>]
let ``ofDense counts what does not fit and keeps the earliest`` () =
    // [T = 3; B = 1; N = 2]: step 0 neuron 1, step 1 neurons 0 and 1 (twice), step 2 neuron 0.
    let spikes = t64 [| 3; 1; 2 |] [ 0.0; 1.0; 1.0; 2.0; 1.0; 0.0 ]
    let b = EventBuffer.ofDense spikes 0.5 3
    Assert.Equal<(float * int)[][]>([| [| 0.0, 1; 0.5, 0; 0.5, 1 |] |], EventBuffer.toEvents b)
    Assert.Equal<int[]>([| 2 |], b.Overflow.ToInt32Array())

    assertThrowsArg [ "EventBuffer.ofDense"; "non-negative integers"; "0.5" ] (fun () ->
        EventBuffer.ofDense (t64 [| 1; 1; 1 |] [ 0.5 ]) 1.0 2)

    assertThrowsArg [ "EventBuffer.ofDense"; "[T; B; N...]" ] (fun () -> EventBuffer.ofDense (t64 [| 2; 1 |] [ 1.0; 0.0 ]) 1.0 2)
    assertThrowsArg [ "EventBuffer.ofDense"; "dt" ] (fun () -> EventBuffer.ofDense spikes 0.0 2)

[<Fact>]
let ``toDense bins to the nearest step and rejects events past the window`` () =
    let b =
        EventBuffer.ofEvents Float64 [| 2 |] 4 [| [| 0.0014, 0; 0.0016, 1; 0.0029, 1 |] |]
    // Steps of 1 ms: 1.4 ms -> step 1, 1.6 ms -> step 2, 2.9 ms -> step 3.
    let d = EventBuffer.toDense b 4 1e-3
    Assert.Equal<int[]>([| 4; 1; 2 |], d.Shape)
    assertSameValues "binned" [| 0.0; 0.0; 1.0; 0.0; 0.0; 1.0; 0.0; 1.0 |] (d.ToDoubleArray())
    assertThrowsArg [ "EventBuffer.toDense"; "sample [0]"; "step 3"; "3 steps" ] (fun () -> EventBuffer.toDense b 3 1e-3)

// ---------------------------------------------------------------------------------------------
// Decoders

/// The reference first-spike times and counts of a buffer, per flat sample and neuron.
let private referenceDecode (b: EventBuffer) =
    let n = Shape.count b.Shape
    let cap = b.Capacity
    let ts, ns = b.Times.ToDoubleArray(), b.Neurons.ToInt32Array()
    let rows = ts.Length / max 1 cap
    let first = Array.create (rows * n) inf
    let counts = Array.zeroCreate<float> (rows * n)
    let firstSlot = Array.create (rows * n) -1

    for s in 0 .. rows - 1 do
        for k in 0 .. cap - 1 do
            let i = ns[s * cap + k]

            if i >= 0 then
                counts[s * n + i] <- counts[s * n + i] + 1.0

                if ts[s * cap + k] < first[s * n + i] then
                    first[s * n + i] <- ts[s * cap + k]
                    firstSlot[s * n + i] <- s * cap + k

    first, counts, firstSlot

[<Fact>]
let ``firstSpikeTimes and spikeCounts equal a naive reference, silent neurons at +inf`` () =
    forAllSeeds 20 (fun seed ->
        let rng = Random seed
        let batch = [| rng.Next(1, 3); rng.Next(1, 3) |]
        let times, neurons = randomEvents rng batch (rng.Next(1, 10)) 5
        let b = EventBuffer.ofTimes [| 5 |] (rng.Next(1, 8)) times neurons
        let first, counts, _ = referenceDecode b
        let f = EventBuffer.firstSpikeTimes b
        Assert.Equal<int[]>(Array.append batch [| 5 |], f.Shape)
        assertSameValues "first" first (f.ToDoubleArray())
        assertSameValues "counts" counts ((EventBuffer.spikeCounts b).ToDoubleArray()))

[<Fact>]
let ``firstSpikeTimes takes the earliest event even when the slots are not in time order`` () =
    let b = EventBuffer.ofEvents Float64 [| 2 |] 4 [| [| 0.1, 0; 0.2, 0; 0.3, 1 |] |]
    let shuffled = b.WithTimes(t64 [| 1; 4 |] [ 0.5; 0.2; 0.3; inf ])
    assertSameValues "first" [| 0.2; 0.3 |] ((EventBuffer.firstSpikeTimes shuffled).ToDoubleArray())

/// A buffer with repeated and silent neurons: sample 0 has neuron 1 three times and neuron 0 twice,
/// neurons 2 and 3 silent; sample 1 only neuron 3.
let private repeatedBuffer () =
    EventBuffer.ofEvents Float64 [| 4 |] 6 [| [| 0.1, 1; 0.15, 0; 0.2, 1; 0.25, 0; 0.3, 1 |]; [| 0.05, 3 |] |]

/// Σ w · first over the neurons that spike (silent ones masked by a constant mask).
let private weightedFirst (b: EventBuffer) (w: Tensor) (times: Tensor) =
    let f = EventBuffer.firstSpikeTimes (b.WithTimes times)
    let spiking = Ad.stopGradient (f.Lt 1e30)
    Tensor.Where(spiking, f * w, Tensor.ZerosLike f).Sum()

[<Fact>]
let ``firstSpikeTimes' gradient reaches each neuron's first event only and is never NaN`` () =
    let b = repeatedBuffer ()
    let w = t64 [| 2; 4 |] [ 1.0; 2.0; 3.0; 4.0; 5.0; 6.0; 7.0; 8.0 ]
    let g = Ad.grad (weightedFirst b w) b.Times
    // Sample 0 slots: 0.1 (n1), 0.15 (n0), 0.2, 0.25, 0.3, empty; sample 1: 0.05 (n3), empties.
    assertSameValues "gradient" [| 2.0; 1.0; 0.0; 0.0; 0.0; 0.0; 8.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (g.ToDoubleArray())

    // The plain sum (with +inf entries in the output) still gives a finite gradient.
    let g2 =
        Ad.grad (fun (t: Tensor) -> (EventBuffer.firstSpikeTimes (b.WithTimes t)).Sum()) b.Times

    assertSameValues "gradient of the sum" [| 1.0; 1.0; 0.0; 0.0; 0.0; 0.0; 1.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (g2.ToDoubleArray())

[<Fact>]
let ``firstSpikeTimes under jvp and vmap equals the batched result and the first-slot tangents`` () =
    let b = repeatedBuffer ()

    let tangent =
        t64 [| 2; 6 |] [ 1.0; 2.0; 3.0; 4.0; 5.0; 6.0; 7.0; 8.0; 9.0; 10.0; 11.0; 12.0 ]

    let primal, tan =
        Ad.jvp (fun (t: Tensor) -> EventBuffer.firstSpikeTimes (b.WithTimes t)) b.Times tangent

    assertSameValues "primal" [| 0.15; 0.1; inf; inf; inf; inf; inf; 0.05 |] (primal.ToDoubleArray())
    assertSameValues "tangent" [| 2.0; 1.0; 0.0; 0.0; 0.0; 0.0; 0.0; 7.0 |] (tan.ToDoubleArray())

    let mapped = Ad.vmap EventBuffer.firstSpikeTimes b
    assertSameValues "vmap" (primal.ToDoubleArray()) (mapped.ToDoubleArray())
    let counts = Ad.vmap EventBuffer.spikeCounts b
    assertSameValues "vmap counts" [| 2.0; 3.0; 0.0; 0.0; 0.0; 0.0; 0.0; 1.0 |] (counts.ToDoubleArray())

    // Per-example gradients: vmap of grad.
    let w = t64 [| 4 |] [ 1.0; 2.0; 3.0; 4.0 ]

    let perExample =
        Ad.vmap (fun (bb: EventBuffer) -> Ad.grad (weightedFirst bb w) bb.Times) b

    assertSameValues "vmap of grad" [| 2.0; 1.0; 0.0; 0.0; 0.0; 0.0; 4.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (perExample.ToDoubleArray())

[<Fact>]
let ``firstSpikeTimes' derivative matches central differences in Float64`` () =
    let rng = Random 3
    // Distinct times 0.01 apart, so a step of 1e-6 keeps the order.
    let times =
        Array.init 12 (fun k -> 0.05 + 0.01 * float k)
        |> Array.sortBy (fun _ -> rng.Next())

    let neurons = Array.init 12 (fun _ -> rng.Next(-1, 4))

    let b =
        EventBuffer.ofTimes [| 4 |] 6 (Tensor.FromArray(times, 2, 6)) (ints [| 2; 6 |] neurons)

    let w = uniform rng 0.5 2.0 [| 2; 4 |] |> Tensor.convert Float64

    finiteDifferenceTest "firstSpikeTimes" rng (fun (xs: Tensor[]) -> weightedFirst b w xs[0]) [| b.Times |]

// ---------------------------------------------------------------------------------------------
// Encoders

[<Fact>]
let ``latency maps values linearly to times, with threshold, bias and inversion`` () =
    let x = t64 [| 2; 2 |] [ 0.0; 0.5; 1.0; 0.25 ]
    let b = EventBuffer.latency 0.0 0.03 x
    Assert.Equal<int[]>([| 2 |], b.Shape)
    Assert.Equal<(float * int)[][]>([| [| 0.0, 0; 0.015, 1 |]; [| 0.0075, 1; 0.03, 0 |] |], EventBuffer.toEvents b)

    let inverted = EventBuffer.latency 0.03 0.0 x
    assertSameValues "tMax (1 - u)" [| 0.03; 0.015; 0.0; 0.0225 |] ((EventBuffer.firstSpikeTimes inverted).ToDoubleArray())

    let yy =
        EventBuffer.latencyWith
            {
                TEarly = 0.002
                TLate = 0.012
                Threshold = Some 0.3
                BiasTime = Some 0.001
            }
            x

    Assert.Equal<int[]>([| 3 |], yy.Shape)
    Assert.Equal(3, yy.Capacity)
    // Values below 0.3 (0.0 and 0.25) send nothing; the bias neuron 2 spikes at 1 ms.
    assertCloseValues "first" 1e-15 [| inf; 0.007; 0.001; 0.012; inf; 0.001 |] ((EventBuffer.firstSpikeTimes yy).ToDoubleArray())
    Assert.Equal<int[]>([| 2; 2 |], yy.Count.ToInt32Array())

[<Fact>]
let ``latency on the Yin-Yang inputs gives W&P's code with the bias spike at 0`` () =
    let d = YinYang.generate (RandomBits.keyOfSeed 1L) 8
    let b = EventBuffer.latency 0.0 30e-3 d.X
    Assert.Equal<int[]>([| 8; 5 |], b.Times.Shape)
    let x = d.X.ToDoubleArray()
    let f = (EventBuffer.firstSpikeTimes b).ToDoubleArray()
    assertCloseValues "t = 30 ms · u" 1e-6 (x |> Array.map (fun u -> 30e-3 * u)) f
    Assert.True(f |> Array.chunkBySize 5 |> Array.forall (fun r -> r[4] = 0.0))

[<Fact>]
let ``latency times are differentiable in the values`` () =
    let rng = Random 5
    let x = uniform rng 0.1 0.9 [| 3; 4 |] |> Tensor.convert Float64
    let w = uniform rng 0.5 2.0 [| 3; 5 |] |> Tensor.convert Float64

    let f (xs: Tensor[]) =
        let b =
            EventBuffer.latencyWith
                {
                    TEarly = 0.03
                    TLate = 0.0
                    Threshold = None
                    BiasTime = Some 0.0
                }
                xs[0]

        (EventBuffer.firstSpikeTimes b * w).Sum()

    finiteDifferenceTest "latency" rng f [| x |]
    let g = Ad.grad (fun (x: Tensor) -> f [| x |]) x
    assertCloseValues "d/dx" 1e-12 ((w.Narrow(1, 0, 4) * -0.03).ToDoubleArray()) (g.ToDoubleArray())

[<Fact>]
let ``latency rejects values outside [0, 1] and bad times`` () =
    assertThrowsArg [ "EventBuffer.latency"; "[0, 1]"; "1.5" ] (fun () -> EventBuffer.latency 0.0 1.0 (t64 [| 1; 2 |] [ 0.5; 1.5 ]))
    assertThrowsArg [ "EventBuffer.latency"; "[0, 1]"; "NaN" ] (fun () -> EventBuffer.latency 0.0 1.0 (t64 [| 1; 1 |] [ nan ]))
    assertThrowsArg [ "EventBuffer.latency"; "tLate"; "-1" ] (fun () -> EventBuffer.latency 0.0 -1.0 (t64 [| 1; 1 |] [ 0.5 ]))
    assertThrowsArg [ "EventBuffer.latency"; "[batch...; N]" ] (fun () -> EventBuffer.latency 0.0 1.0 (s64 0.5))

// ---------------------------------------------------------------------------------------------
// Overflow, batch slicing, concatenation, merging

[<Fact>]
let ``checkNoOverflow names the samples that lost events`` () =
    let b =
        EventBuffer.ofEvents Float32 [| 2 |] 1 [| [| 0.1, 0 |]; [| 0.1, 0; 0.2, 1; 0.3, 1 |]; [||] |]

    let ex =
        Assert.Throws<InvalidOperationException>(fun () -> EventBuffer.checkNoOverflow b)

    Assert.Contains("1 of 3 samples", ex.Message)
    Assert.Contains("sample [1] lost 2", ex.Message)
    Assert.Contains("capacity 1", ex.Message)
    EventBuffer.checkNoOverflow (EventBuffer.take [| 0; 2 |] b)

[<Fact>]
let ``take, slice and concat cut and join along the batch axis`` () =
    let b = repeatedBuffer ()
    let t = EventBuffer.take [| 1; 0; 1 |] b
    Assert.Equal<int[]>([| 1; 5; 1 |], t.Count.ToInt32Array())
    Assert.Equal<(float * int)[]>((EventBuffer.toEvents b)[1], (EventBuffer.toEvents t)[0])
    let s = EventBuffer.slice 1 1 b
    Assert.Equal<(float * int)[][]>([| [| 0.05, 3 |] |], EventBuffer.toEvents s)

    let small = EventBuffer.ofEvents Float64 [| 4 |] 2 [| [| 0.5, 2 |] |]
    let c = EventBuffer.concat [ b; small ]
    Assert.Equal(6, c.Capacity)
    Assert.Equal<(float * int)[][]>(Array.append (EventBuffer.toEvents b) (EventBuffer.toEvents small), EventBuffer.toEvents c)

    assertThrowsArg [ "EventBuffer.take"; "index 2"; "batch of 2" ] (fun () -> EventBuffer.take [| 2 |] b)
    assertThrowsArg [ "EventBuffer.slice"; "outside a batch of 2" ] (fun () -> EventBuffer.slice 1 2 b)

    assertThrowsArg [ "EventBuffer.concat"; "populations differ"; "[4]"; "[3]" ] (fun () ->
        EventBuffer.concat [ b; EventBuffer.empty Float64 [| 3 |] [| 1 |] 2 ])

    assertThrowsArg [ "EventBuffer.concat"; "dtypes differ" ] (fun () ->
        EventBuffer.concat [ b; EventBuffer.empty Float32 [| 4 |] [| 1 |] 2 ])

    assertThrowsArg [ "EventBuffer.take"; "batch axis" ] (fun () -> EventBuffer.take [| 0 |] (EventBuffer.empty Float32 [| 4 |] [||] 2))

[<Fact>]
let ``merge is the sorted union and adds the overflows`` () =
    let a =
        EventBuffer.ofEvents Float64 [| 3 |] 2 [| [| 0.2, 0; 0.4, 1; 0.5, 2 |]; [| 0.1, 2 |] |]

    let b =
        EventBuffer.ofEvents Float64 [| 3 |] 3 [| [| 0.2, 1; 0.3, 2 |]; [| 0.1, 0; 0.0, 1 |] |]

    let m = EventBuffer.merge a b
    Assert.Equal(5, m.Capacity)

    Assert.Equal<(float * int)[][]>([| [| 0.2, 0; 0.2, 1; 0.3, 2; 0.4, 1 |]; [| 0.0, 1; 0.1, 0; 0.1, 2 |] |], EventBuffer.toEvents m)

    Assert.Equal<int[]>([| 1; 0 |], m.Overflow.ToInt32Array())

    // Gradients reach both inputs' times.
    let ga, gb =
        Ad.grad
            (fun (ab: Tensor[]) -> (EventBuffer.merge (a.WithTimes ab[0]) (b.WithTimes ab[1])).Times.Narrow(-1, 0, 1).Sum())
            [| a.Times; b.Times |]
        |> fun g -> g[0], g[1]

    assertSameValues "a" [| 1.0; 0.0; 0.0; 0.0 |] (ga.ToDoubleArray())
    assertSameValues "b" [| 0.0; 0.0; 0.0; 1.0; 0.0; 0.0 |] (gb.ToDoubleArray())
    assertThrowsArg [ "EventBuffer.merge"; "batch shapes differ" ] (fun () -> EventBuffer.merge a (EventBuffer.take [| 0 |] b))

// ---------------------------------------------------------------------------------------------
// Invariants and Float32

[<Fact>]
let ``validate accepts built buffers and names the first broken invariant`` () =
    forAllSeeds 10 (fun seed ->
        let rng = Random seed
        let times, neurons = randomEvents rng [| 3 |] 7 4
        EventBuffer.validate (EventBuffer.ofTimes [| 4 |] (rng.Next(0, 9)) times neurons))

    EventBuffer.validate (EventBuffer.ofDense (t64 [| 2; 1; 2 |] [ 1.0; 2.0; 0.0; 1.0 ]) 0.1 2)
    let b = repeatedBuffer ()
    let ints2 (data: int[]) = ints [| 2 |] data

    let with' (t: Tensor) (n: Tensor) (c: Tensor) =
        EventBuffer(t, n, c, b.Overflow, b.Shape)

    let unsorted =
        b.WithTimes(t64 [| 2; 6 |] [ 0.2; 0.15; 0.2; 0.25; 0.3; inf; 0.05; inf; inf; inf; inf; inf ])

    assertThrowsArg [ "EventBuffer.validate"; "sample [0]"; "slot 1"; "before slot 0" ] (fun () -> EventBuffer.validate unsorted)

    assertThrowsArg [ "EventBuffer.validate"; "sample [1]"; "Count 7" ] (fun () ->
        EventBuffer.validate (with' b.Times b.Neurons (ints2 [| 5; 7 |])))

    assertThrowsArg [ "EventBuffer.validate"; "sample [0]"; "slot 4 is past Count 4" ] (fun () ->
        EventBuffer.validate (with' b.Times b.Neurons (ints2 [| 4; 1 |])))

    let badNeuron =
        b.Neurons.ToInt32Array() |> Array.mapi (fun i v -> if i = 6 then 9 else v)

    assertThrowsArg [ "EventBuffer.validate"; "sample [1]"; "neuron 9" ] (fun () ->
        EventBuffer.validate (with' b.Times (ints [| 2; 6 |] badNeuron) b.Count))

[<Fact>]
let ``Float32 buffers decode and differentiate like Float64 ones`` () =
    let b = repeatedBuffer ()

    let b32 =
        EventBuffer(b.Times.Convert Float32, b.Neurons, b.Count, b.Overflow, b.Shape)

    let f32 = EventBuffer.firstSpikeTimes b32
    Assert.Equal(Float32, f32.DType)

    assertSameValues "first" ((EventBuffer.firstSpikeTimes b).Convert(Float32).ToDoubleArray()) (f32.ToDoubleArray())

    let g =
        Ad.grad (fun (t: Tensor) -> (EventBuffer.firstSpikeTimes (b32.WithTimes t)).Sum()) b32.Times

    assertSameValues "gradient" [| 1.0; 1.0; 0.0; 0.0; 0.0; 0.0; 1.0; 0.0; 0.0; 0.0; 0.0; 0.0 |] (g.ToDoubleArray())
    let l = EventBuffer.latency 0.0 0.03 (Tensor.FromArray([| 0.5f; 1.0f |], 1, 2))
    Assert.Equal(Float32, l.Times.DType)

    assertThrowsArg [ "EventBuffer.ofDense"; "Float32 or Float64"; "int32" ] (fun () ->
        EventBuffer.ofDense (Tensor.FromArray([| 1; 0 |], 1, 1, 2)) 1.0 2)

[<Fact>]
let ``ofTimes, merge and firstSpikeTimes pass the dot-product test (vjp against jvp)`` () =
    let rng = Random 13

    let times =
        Array.init 10 (fun k -> 0.01 * float (k + 1))
        |> Array.sortBy (fun _ -> rng.Next())

    let neurons = Array.init 10 (fun _ -> rng.Next(-1, 3))
    let t = Tensor.FromArray(times, 2, 5)
    let n = ints [| 2; 5 |] neurons
    // Finite outputs only: the sorted times of the first Count slots, the first times of spiking neurons.
    let finite (x: Tensor) =
        Tensor.Where(Ad.stopGradient (x.Lt 1e30), x, Tensor.ZerosLike x)

    dotProductTest "ofTimes" rng (fun xs -> finite (EventBuffer.ofTimes [| 3 |] 4 xs[0] n).Times) [| t |] 1e-12
    |> ignore

    let a = EventBuffer.ofTimes [| 3 |] 4 t n

    dotProductTest
        "merge"
        rng
        (fun xs -> finite (EventBuffer.merge (a.WithTimes xs[0]) (a.WithTimes xs[1])).Times)
        [| a.Times; a.Times * 0.5 |]
        1e-12
    |> ignore

    dotProductTest "firstSpikeTimes" rng (fun xs -> finite (EventBuffer.firstSpikeTimes (a.WithTimes xs[0]))) [| a.Times |] 1e-12
    |> ignore
