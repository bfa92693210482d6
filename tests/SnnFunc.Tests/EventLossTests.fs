/// Event losses and metrics (EventLoss) against hand computations and finite differences in
/// Float64, with silent neurons; event data sets (EventDataset) against Batching.
module SnnFunc.Tests.EventLossTests

open System
open Xunit
open SnnFunc
open SnnFunc.Data
open SnnFunc.Tests.TestUtil
open SnnFunc.Tests.AdTestUtil

let private inf = Double.PositiveInfinity

// ---------------------------------------------------------------------------------------------
// Losses

/// −log softmax(−t/τ0)_l + α(exp(t_l/τ1) − 1) for one sample, written out.
let private ttfsByHand (tau0: float) (tau1: float) (alpha: float) (t: float[]) (l: int) =
    let z = t |> Array.map (fun ti -> exp (-ti / tau0))
    -log(z[l] / Array.sum z) + alpha * (exp (t[l] / tau1) - 1.0)

[<Fact>]
let ``ttfsCrossEntropy equals the hand formula and clips silent neurons to tMax`` () =
    let tau0, tau1, alpha, tMax = 0.5e-3, 6.4e-3, 3e-3, 30e-3
    // Sample 0 all spike; sample 1 has a silent non-label neuron; sample 2 a silent label.
    let rows =
        [| [| 2e-3; 3e-3; 2.5e-3 |]; [| 4e-3; inf; 3.5e-3 |]; [| inf; 1e-3; 2e-3 |] |]

    let labels = [| 0; 2; 0 |]
    let t = Tensor.FromArray(Array.concat rows, 3, 3)
    let loss = (EventLoss.ttfsCrossEntropy tau0 tau1 alpha tMax t labels).ToScalar()

    let expected =
        Array.map2 (fun (r: float[]) l -> ttfsByHand tau0 tau1 alpha (r |> Array.map (min tMax)) l) rows labels
        |> Array.average

    assertNear "loss" 1e-12 expected loss
    Assert.True(Double.IsFinite loss)

    // The gradient (§2.4d): −softmax_i/τ0, plus 1/τ0 + (α/τ1) e^{t_l/τ1} at the label, over B;
    // zero for the clipped (silent) entries.
    let g =
        Ad.grad (fun (t: Tensor) -> EventLoss.ttfsCrossEntropy tau0 tau1 alpha tMax t labels) t

    let expectedGrad =
        Array.map2
            (fun (r: float[]) l ->
                let c = r |> Array.map (min tMax)
                let z = c |> Array.map (fun ti -> exp (-ti / tau0))
                let s = Array.sum z

                r
                |> Array.mapi (fun i ti ->
                    if ti > tMax then
                        0.0
                    else
                        let d = -z[i] / s / tau0

                        let d =
                            if i = l then
                                d + 1.0 / tau0 + alpha / tau1 * exp (c[l] / tau1)
                            else
                                d

                        d / 3.0))
            rows
            labels
        |> Array.concat

    assertCloseValues "gradient" 1e-9 expectedGrad (g.ToDoubleArray())

[<Fact>]
let ``ttfsCrossEntropySkipSilent drops the samples with a silent label, loss and gradient`` () =
    let tau0, tau1, alpha, tMax = 0.5e-3, 6.4e-3, 3e-3, 30e-3
    // Sample 0 all spike; sample 1 a silent non-label neuron; sample 2 a silent label (and a
    // silent non-label one); sample 3 a label spiking after tMax.
    let rows =
        [|
            [| 2e-3; 3e-3; 2.5e-3 |]
            [| 4e-3; inf; 3.5e-3 |]
            [| inf; 1e-3; inf |]
            [| 40e-3; 1e-3; 2e-3 |]
        |]

    let labels = [| 0; 2; 0; 0 |]
    let t = Tensor.FromArray(Array.concat rows, 4, 3)

    let skip (t: Tensor) =
        EventLoss.ttfsCrossEntropySkipSilent tau0 tau1 alpha tMax t labels

    let loss = (skip t).ToScalar()
    // The two fired samples' losses as in ttfsCrossEntropy, over the whole batch of 4.
    let full (t: Tensor) =
        EventLoss.ttfsCrossEntropy tau0 tau1 alpha tMax t labels

    let firedRows = Tensor.FromArray(Array.concat rows[0..1], 2, 3)

    let expected =
        (EventLoss.ttfsCrossEntropy tau0 tau1 alpha tMax firedRows labels[0..1]).ToScalar()
        / 2.0

    assertNear "loss" 1e-12 expected loss
    Assert.True(loss < (full t).ToScalar())

    // The gradient: ttfsCrossEntropy's on the fired samples, zero on the silent-label rows.
    let g = (Ad.grad skip t).ToDoubleArray()
    let gFull = (Ad.grad full t).ToDoubleArray()
    Assert.True(Array.forall Double.IsFinite g)
    assertCloseValues "fired rows" 1e-9 gFull[0..5] g[0..5]
    assertSameValues "silent-label rows" (Array.zeroCreate 6) g[6..11]

[<Fact>]
let ``ttfsCrossEntropy's gradient matches central differences in Float64`` () =
    let rng = Random 11
    let t = uniform rng 1e-3 10e-3 [| 4; 3 |] |> Tensor.convert Float64
    let labels = [| 0; 2; 1; 1 |]

    finiteDifferenceTestWith 1e-8 1e-6 "ttfs" rng (fun xs -> EventLoss.ttfsCrossEntropy 0.5e-3 6.4e-3 3e-3 30e-3 xs[0] labels) [| t |]

[<Fact>]
let ``event losses and metrics equal hand computations`` () =
    let t =
        t64 [| 4; 3 |] [ 1.0; 2.0; 3.0; 2.0; 2.0; 5.0; inf; inf; inf; 4.0; inf; 0.5 ]
    // Sample 0: argmin 0; sample 1: a tie (wrong); sample 2: all silent (wrong); sample 3: argmin 2.
    Assert.Equal(0.5, EventLoss.ttfsAccuracy t [| 0; 0; 0; 2 |])
    Assert.Equal(0.25, EventLoss.ttfsAccuracy t [| 0; 1; 2; 0 |])

    let target = t64 [| 1; 3 |] [ 1.0; 1.0; 1.0 ]
    // Clipped at 4, squared errors: rows (0, 1, 4), (1, 1, 9), (9, 9, 9), (9, 9, 0.25) → 61.25 / 12.
    assertNear "mse" 1e-15 (61.25 / 12.0) ((EventLoss.spikeTimeMse 4.0 target t).ToScalar())

    let v = t64 [| 2; 3 |] [ 1.0; 2.0; 0.5; -1.0; 0.0; 3.0 ]
    let ce (r: float[]) l = -(r[l] - log (r |> Array.sumBy exp))

    assertNear
        "max voltage CE"
        1e-14
        ((ce [| 1.0; 2.0; 0.5 |] 1 + ce [| -1.0; 0.0; 3.0 |] 0) / 2.0)
        ((EventLoss.maxVoltageCrossEntropy v [| 1; 0 |]).ToScalar())

    let counts = t64 [| 2; 2 |] [ 0.0; 3.0; 6.0; 1.0 ]
    // lower 1, upper 4: (1, 0, 4, 0) → mean 5/4.
    assertNear "count penalty" 1e-15 1.25 ((EventLoss.spikeCountPenalty 1.0 4.0 counts).ToScalar())

    let g = Ad.grad (EventLoss.spikeCountPenalty 1.0 4.0) counts
    assertSameValues "count penalty gradient" [| -0.5; 0.0; 1.0; 0.0 |] (g.ToDoubleArray())

[<Fact>]
let ``event losses reject bad input`` () =
    let t = t64 [| 2; 3 |] [ 1.0; 2.0; 3.0; 2.0; 2.0; 5.0 ]

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "3 labels for a batch of 2" ] (fun () ->
        EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 10.0 t [| 0; 1; 2 |])

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "label 3"; "[0, 3)" ] (fun () ->
        EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 10.0 t [| 0; 3 |])

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "tau0"; "-1" ] (fun () -> EventLoss.ttfsCrossEntropy -1.0 1.0 0.0 10.0 t [| 0; 1 |])
    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "tMax" ] (fun () -> EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 inf t [| 0; 1 |])

    assertThrowsArg [ "EventLoss.ttfsCrossEntropy"; "[B; classes]"; "[6]" ] (fun () ->
        EventLoss.ttfsCrossEntropy 1.0 1.0 0.0 10.0 (t.Flatten()) [| 0; 1 |])

    assertThrowsArg [ "EventLoss.ttfsAccuracy"; "2 labels for a batch of 3" ] (fun () -> EventLoss.ttfsAccuracy (t.Transpose()) [| 0; 1 |])
    assertThrowsArg [ "EventLoss.spikeCountPenalty"; "lower" ] (fun () -> EventLoss.spikeCountPenalty 3.0 1.0 t)

[<Fact>]
let ``a TTFS loss of latency-coded events has a finite gradient in the input values`` () =
    let x = t64 [| 2; 3 |] [ 0.2; 0.9; 0.5; 0.7; 0.1; 0.05 ]

    let loss (x: Tensor) =
        let b =
            EventBuffer.latencyWith
                {
                    TEarly = 0.01
                    TLate = 0.0
                    Threshold = Some 0.08
                    BiasTime = None
                }
                x

        EventLoss.ttfsCrossEntropy 0.5e-3 6.4e-3 3e-3 0.02 (EventBuffer.firstSpikeTimes b) [| 1; 2 |]

    let g = Ad.grad loss x
    let gs = g.ToDoubleArray()
    Assert.True(gs |> Array.forall Double.IsFinite, $"%A{gs}")
    // The silent input (0.05 < 0.08) gets no gradient; the others do.
    Assert.Equal(0.0, gs[5])
    Assert.True(gs[..4] |> Array.forall (fun v -> v <> 0.0))

// ---------------------------------------------------------------------------------------------
// Event data sets

[<Fact>]
let ``EventDataset cuts the batches Batching cuts, with the right events and labels`` () =
    let dense = YinYang.generate (RandomBits.keyOfSeed 2L) 10
    let d = EventDataset.ofDataset (EventBuffer.latency 0.0 30e-3) dense
    Assert.Equal(10, d.Count)
    let key = RandomBits.keyOfSeed 9L
    let batches = EventDataset.batches key 4 d |> Seq.toArray
    let expected = Batching.batches key 4 dense |> Seq.toArray
    Assert.Equal<int[]>([| 4; 4; 2 |], batches |> Array.map (fun (b, _) -> b.BatchShape[0]))

    for (events, labels), (x, l) in Array.zip batches expected do
        Assert.Equal<int[]>(l, labels)

        assertSameValues
            "events"
            ((EventBuffer.firstSpikeTimes (EventBuffer.latency 0.0 30e-3 x)).ToDoubleArray())
            ((EventBuffer.firstSpikeTimes events).ToDoubleArray())

    let inOrder = EventDataset.inOrder 3 d |> Seq.map snd |> Seq.concat |> Seq.toArray
    Assert.Equal<int[]>(dense.Labels, inOrder)
    Assert.Equal(3, (EventDataset.take 3 d).Count)
    Assert.Equal<int[]>(Array.sort dense.Labels, Array.sort (EventDataset.shuffle key d).Labels)

    assertThrowsArg [ "EventDataset.create"; "10 examples"; "3 labels" ] (fun () -> EventDataset.create d.Events [| 0; 1; 2 |])
    assertThrowsArg [ "EventDataset.subset"; "index 10" ] (fun () -> EventDataset.subset [| 10 |] d)
