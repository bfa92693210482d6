/// NeuroBench metrics against hand-computed cases from the reference definitions
/// (shared/reference/neurobench.md): the AC/MAC rule per batch and per sample, per-sample
/// normalisation, batch weighting in Reference and Corrected mode, activation sparsity, connection
/// sparsity with zero weights, masks and biases, footprint, membrane updates, the harness's conv
/// golden values, recurrence and delays, event-driven runs, and the errors for bad input.
module SnnFunc.Tests.NeuroBenchTests

open System
open Xunit
open SnnFunc

let private dt = 1e-3
let private lif = Neuron.lif { Snn.Lif.defaults with Dt = dt }
let private li = Neuron.li { Snn.Li.defaults with Dt = dt }

/// A Float64 tensor of the given shape.
let private t64 (shape: int[]) (values: float[]) = Tensor.FromArray(values, shape)

/// W [3; 2] with three zeros: non-zero weights per input row 1, 2, 0.
let private w1 = t64 [| 3; 2 |] [| 1.0; 0.0; 2.0; 3.0; 0.0; 0.0 |]

/// x (3) -> h (2 LIF), weights w1.
let private net =
    Graph.empty
    |> Graph.input "x" 3
    |> Graph.population "h" 2 lif
    |> Graph.connect "x" "h" (Projection.dense (Init.ofTensor w1))

let private netParams = Graph.initAs Float64 (Random.key 0L) net

/// A run result with the given observables (output, membrane) per population.
let private runOf (observed: (string * Tensor * Tensor) list) : RunResult =
    {
        Observed =
            observed
            |> List.map (fun (n, out, mem) ->
                n,
                {
                    Output = out
                    Spikes = out
                    Membrane = mem
                    Current = null
                })
            |> Map.ofList
        Final = Map.empty
    }

/// Input [T = 2; B = 2; 3]: step 0 binary in both samples, step 1 has a 0.5 in sample 0 only.
///   t0: b0 [1, 0, 1], b1 [0, 1, 0];  t1: b0 [0.5, 1, 0], b1 [1, 1, 1]
let private x =
    t64 [| 2; 2; 3 |] [| 1.0; 0.0; 1.0; 0.0; 1.0; 0.0; 0.5; 1.0; 0.0; 1.0; 1.0; 1.0 |]

/// Spikes of h [2; 2; 2]: t0 b0 [0, 1], b1 [0, 0]; t1 b0 [1, 1], b1 [0, 0] — 3 ones, 5 zeros of 8.
let private hSpikes = t64 [| 2; 2; 2 |] [| 0.0; 1.0; 0.0; 0.0; 1.0; 1.0; 0.0; 0.0 |]

/// Membrane of h [2; 2; 2]: t0 b0 [0.5, 1], b1 [0, 0]; t1 b0 [0.5, 0.2], b1 [0, 0.3].
let private hMem = t64 [| 2; 2; 2 |] [| 0.5; 1.0; 0.0; 0.0; 0.5; 0.2; 0.0; 0.3 |]

let private measured =
    NeuroBench.measureRun NeuroBench.defaults net netParams (Map [ "x", x ]) (runOf [ "h", hSpikes, hMem ])

let private close (expected: float) (actual: float) =
    Assert.True(abs (expected - actual) < 1e-12, $"expected %.15g{expected}, got %.15g{actual}")

[<Fact>]
let ``synaptic operations: the reference's AC/MAC rule per batch step and the corrected one per sample`` () =
    // Effective ops per (t, b) = Σ_in [x ≠ 0] · (non-zero weights of row in) with rows 1, 2, 0:
    //   t0 b0: 1 + 0 (row 2 has none) = 1;  t0 b1: 2;  t1 b0: 1 + 2 = 3;  t1 b1: 1 + 2 + 0 = 3.
    // Reference: step 0 is binary over the whole batch -> AC 1 + 2 = 3; step 1 has a 0.5 -> MAC 3 + 3 = 6.
    close 6.0 measured.BatchMACs
    close 3.0 measured.BatchACs
    // Corrected: only (t1, b0) is non-binary -> MAC 3; AC 1 + 2 + 3 = 6.
    close 3.0 measured.SampleMACs
    close 6.0 measured.SampleACs
    // Dense: 2 steps x batch 2 x 3 x 2 = 24.
    close 24.0 measured.Dense
    Assert.Equal(2, measured.Samples)

    // Per sample (divided by the 2 samples processed).
    let reference = NeuroBench.evaluate NeuroBench.defaults net netParams [ measured ]

    let corrected =
        NeuroBench.evaluate
            { NeuroBench.defaults with
                Mode = Corrected
            }
            net
            netParams
            [ measured ]

    close 3.0 reference.SynapticOperations.EffectiveMACs
    close 1.5 reference.SynapticOperations.EffectiveACs
    close 12.0 reference.SynapticOperations.Dense
    close 1.5 corrected.SynapticOperations.EffectiveMACs
    close 3.0 corrected.SynapticOperations.EffectiveACs
    close 12.0 corrected.SynapticOperations.Dense

[<Fact>]
let ``the reference AC/MAC split depends on the batching and the corrected one does not`` () =
    // The same two samples as two batches of one: sample 1 is binary at both steps.
    let one (b: int) =
        NeuroBench.measureRun
            NeuroBench.defaults
            net
            netParams
            (Map [ "x", x.Narrow(1, b, 1) ])
            (runOf [ "h", hSpikes.Narrow(1, b, 1), hMem.Narrow(1, b, 1) ])

    let split = NeuroBench.evaluate NeuroBench.defaults net netParams [ one 0; one 1 ]
    // Batch of one: sample 0 MAC 3 (t1), AC 1 (t0); sample 1 AC 2 + 3. Per sample MAC 1.5, AC 3.
    close 1.5 split.SynapticOperations.EffectiveMACs
    close 3.0 split.SynapticOperations.EffectiveACs
    // Batched as two, the reference says MAC 3 and AC 1.5 (previous test); corrected gives the split's.
    let together = NeuroBench.evaluate NeuroBench.defaults net netParams [ measured ]
    Assert.NotEqual(split.SynapticOperations.EffectiveMACs, together.SynapticOperations.EffectiveMACs)

    let corrected =
        NeuroBench.evaluate
            { NeuroBench.defaults with
                Mode = Corrected
            }
            net
            netParams
            [ measured ]

    close split.SynapticOperations.EffectiveMACs corrected.SynapticOperations.EffectiveMACs
    close split.SynapticOperations.EffectiveACs corrected.SynapticOperations.EffectiveACs

[<Fact>]
let ``membrane updates count every neuron at step 0 and afterwards the changed membranes, per sample`` () =
    // Step 0: B · N = 2 · 2 = 4. Step 1: b0 [0.5 -> 0.5 no, 1 -> 0.2 yes], b1 [0 -> 0 no, 0 -> 0.3 yes] = 2.
    close 6.0 measured.MembraneUpdates
    let r = NeuroBench.evaluate NeuroBench.defaults net netParams [ measured ]
    close 3.0 r.MembraneUpdates

[<Fact>]
let ``activation sparsity is the zero fraction of the spiking populations' outputs`` () =
    // h: 5 zeros of 8.
    close 5.0 measured.ActivationZeros
    close 8.0 measured.Activations
    let r = NeuroBench.evaluate NeuroBench.defaults net netParams [ measured ]
    close 0.625 r.ActivationSparsity

[<Fact>]
let ``an LI readout is no activation layer by default but can be named`` () =
    let g =
        net
        |> Graph.population "out" 1 li
        |> Graph.connect "h" "out" (Projection.dense (Init.constant 1.0))

    let p = Graph.initAs Float64 (Random.key 0L) g
    // out's membrane [2; 2; 1]: all non-zero.
    let outMem = t64 [| 2; 2; 1 |] [| 0.1; 0.2; 0.3; 0.4 |]
    let run = runOf [ "h", hSpikes, hMem; "out", outMem, outMem ]
    let byDefault = NeuroBench.measureRun NeuroBench.defaults g p (Map [ "x", x ]) run

    let named =
        NeuroBench.measureRun
            { NeuroBench.defaults with
                Activations = Some [ "h"; "out" ]
            }
            g
            p
            (Map [ "x", x ])
            run

    // Default: h only, 5 / 8. Named: (5 + 0) / (8 + 4).
    close 5.0 byDefault.ActivationZeros
    close 8.0 byDefault.Activations
    close 5.0 named.ActivationZeros
    close 12.0 named.Activations
    // out's membrane: 2 at step 0, both change at step 1: 4 more updates than h's 6.
    close 10.0 byDefault.MembraneUpdates
    // h -> out (weights all 1) sees binary spikes: ops t0 = 1 (b0), t1 = 2 (b0): ACs 3, dense 2 · 2 · 2 = 8.
    close 3.0 (byDefault.BatchACs - measured.BatchACs)
    close 32.0 byDefault.Dense

[<Fact>]
let ``accuracy and activation sparsity: the reference's batch-size weighting against the corrected totals`` () =
    let batch samples zeros total correct =
        {
            Samples = samples
            Dense = 0.0
            BatchMACs = 0.0
            BatchACs = 0.0
            SampleMACs = 0.0
            SampleACs = 0.0
            MembraneUpdates = 0.0
            ActivationZeros = zeros
            Activations = total
            Correct = Some correct
        }

    // Batch A: 2 samples, 3 zeros of 4 (s = 0.75), 1 correct; batch B (padded): 1 sample, 2 zeros
    // of 8 (s = 0.25), 1 correct; the data set holds 4 samples (one dropped by drop_last).
    let batches = [ batch 2 3.0 4.0 1; batch 1 2.0 8.0 1 ]

    let reference =
        NeuroBench.evaluate
            { NeuroBench.defaults with
                DatasetSize = Some 4
            }
            net
            netParams
            batches

    // Reference: (0.75 · 2 + 0.25 · 1) / 4 = 0.4375; accuracy (0.5 · 2 + 1 · 1) / 4 = 0.5.
    close 0.4375 reference.ActivationSparsity
    close 0.5 reference.ClassificationAccuracy.Value
    // Without DatasetSize the divisor is the 3 samples processed: 1.75 / 3, 2 / 3.
    let processed = NeuroBench.evaluate NeuroBench.defaults net netParams batches
    close (1.75 / 3.0) processed.ActivationSparsity
    close (2.0 / 3.0) processed.ClassificationAccuracy.Value
    // Corrected: zeros / activations = 5 / 12, correct / processed = 2 / 3, DatasetSize unused.
    let corrected =
        NeuroBench.evaluate
            { NeuroBench.defaults with
                Mode = Corrected
                DatasetSize = Some 4
            }
            net
            netParams
            batches

    close (5.0 / 12.0) corrected.ActivationSparsity
    close (2.0 / 3.0) corrected.ClassificationAccuracy.Value
    Assert.Equal(3, corrected.Samples)
    Assert.Equal(2, corrected.Batches)

[<Fact>]
let ``footprint, parameter count and connection sparsity: zeros in weights count, biases do not`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 2 lif
        |> Graph.connect "x" "h" (Projection.dense (Init.ofTensor w1) |> Projection.withBias Init.zeros)

    let s = NeuroBench.staticMetrics g (Graph.initAs Float64 (Random.key 0L) g)
    // Parameters: weight 6 + bias 2 + LIF tauSyn, tauMem, vLeak, vTh, vReset (rank 0) 5 = 13, 8 bytes each.
    Assert.Equal(13L, s.ParameterCount)
    Assert.Equal(104L, s.Footprint)
    // 3 zeros of the 6 weights; the zero bias is not counted (else 5 / 8).
    Assert.Equal(3L, s.ZeroWeights)
    Assert.Equal(6L, s.Weights)
    Assert.Equal(Some 0.5, s.ConnectionSparsity)
    // Float32: 13 · 4 = 52 bytes.
    Assert.Equal(52L, (NeuroBench.staticMetrics g (Graph.initAs Float32 (Random.key 0L) g)).Footprint)

[<Fact>]
let ``a sparse projection's mask zeros the weights it removes and counts as a buffer`` () =
    let mask = Tensor.FromArray([| 1.0f; 1.0f; 0.0f; 1.0f; 1.0f; 1.0f |], [| 3; 2 |])

    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 2 lif
        |> Graph.connect "x" "h" (Projection.sparse mask (Init.ofTensor w1))

    let s = NeuroBench.staticMetrics g (Graph.initAs Float64 (Random.key 0L) g)
    // w1 ⊙ mask = [[1, 0], [0, 3], [0, 0]]: 4 zeros of 6 = 0.6667 (rounded to 4 decimals).
    Assert.Equal(4L, s.ZeroWeights)
    Assert.Equal(Some 0.6667, s.ConnectionSparsity)
    // (6 + 5) parameters · 8 bytes + the Float32 mask's 6 · 4 bytes = 112.
    Assert.Equal(11L, s.ParameterCount)
    Assert.Equal(112L, s.Footprint)

[<Fact>]
let ``connection sparsity of a graph without projections is None, as the harness's 0/0`` () =
    let g = Graph.empty |> Graph.input "x" 3 |> Graph.population "h" 3 lif
    let s = NeuroBench.staticMetrics g (Graph.init (Random.key 0L) g)
    Assert.Equal(None, s.ConnectionSparsity)

/// One step of batch 1 through a convolution with all-one weights and all-one input (the
/// harness's own tests, reference §2.3): the counts of the run.
let private convCounts (inShape: int[]) (proj: Projection) =
    let g =
        Graph.empty
        |> Graph.inputShaped "x" inShape
        |> Graph.addNode "c" (Synapses proj)
        |> Graph.edge "x" "c"
        |> Graph.transform "y" Identity
        |> Graph.edge "c" "y"

    let p = Graph.initAs Float64 (Random.key 0L) g
    let ones = Tensor.Full(Array.append [| 1; 1 |] inShape, 1.0, Float64)
    NeuroBench.measureRun NeuroBench.defaults g p (Map [ "x", ones ]) (runOf [])

[<Fact>]
let ``convolutions give the harness's golden counts, padding excluded from the dense ops`` () =
    let three =
        Projection.conv2d 1 (3, 3) (Init.constant 1.0)
        |> Projection.withOutShape [| 1; 10; 10 |]
    // Conv2d(1, 1, 3) on 12 x 12: 10 · 10 outputs · 9 = 900 (binary input: ACs).
    let c = convCounts [| 1; 12; 12 |] three
    close 900.0 c.BatchACs
    close 900.0 c.Dense
    close 0.0 c.BatchMACs
    // Conv1d(5, 1, 5) on length 10: 6 outputs · 25 = 150.
    let c1 =
        convCounts [| 5; 10 |] (Projection.conv1d 1 5 (Init.constant 1.0) |> Projection.withOutShape [| 1; 6 |])

    close 150.0 c1.BatchACs
    // Conv2d(1, 1, 3, padding = 1) on 4 x 4: dense 100, not 16 · 9 = 144 (the padding stays 0).
    let padded =
        Projection.conv2dWith
            { Conv2dOptions.Default with
                Padding = (1, 1)
            }
            1
            (3, 3)
            (Init.constant 1.0)
        |> Projection.withOutShape [| 1; 4; 4 |]

    let c2 = convCounts [| 1; 4; 4 |] padded
    close 100.0 c2.Dense
    close 100.0 c2.BatchACs

[<Fact>]
let ``a recurrent projection sees the previous step's spikes, zeros at step 0, and counts dense ops at every step`` () =
    let wr = t64 [| 2; 2 |] [| 0.0; 1.0; 1.0; 1.0 |]

    let g =
        Graph.empty
        |> Graph.input "x" 1
        |> Graph.population "h" 2 lif
        |> Graph.connect "x" "h" (Projection.dense (Init.constant 1.0))
        |> Graph.connect "h" "h" (Projection.dense (Init.ofTensor wr))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let xs = t64 [| 3; 1; 1 |] [| 1.0; 0.0; 1.0 |]
    // h spikes t0 [1, 0], t1 [0, 1], t2 [1, 1]; membrane constant (no updates after step 0).
    let z = t64 [| 3; 1; 2 |] [| 1.0; 0.0; 0.0; 1.0; 1.0; 1.0 |]
    let m = Tensor.Full([| 3; 1; 2 |], 0.5, Float64)

    let c =
        NeuroBench.measureRun NeuroBench.defaults g p (Map [ "x", xs ]) (runOf [ "h", z, m ])
    // x -> h (2 non-zero weights): 2 + 0 + 2 = 4. h -> h (rows 1, 2) sees 0, [1, 0], [0, 1]: 0 + 1 + 2 = 3.
    close 7.0 c.BatchACs
    // Dense: x -> h 3 · 1 · 2 = 6; h -> h 3 · 2 · 2 = 12 (step 0 included).
    close 18.0 c.Dense
    close 2.0 c.MembraneUpdates

[<Fact>]
let ``a whole-step delay shifts the input the projection sees`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 2 lif
        |> Graph.connect "x" "h" (Projection.dense (Init.ofTensor w1) |> Projection.delayed 1)

    let p = Graph.initAs Float64 (Random.key 0L) g
    // x t0 [1, 1, 1], t1 [0.5, 0, 0]; delayed by one step: t0 zeros, t1 [1, 1, 1] -> AC 1 + 2 + 0 = 3.
    // Undelayed it would be AC 3 at t0 and MAC 1 at t1.
    let xs = t64 [| 2; 1; 3 |] [| 1.0; 1.0; 1.0; 0.5; 0.0; 0.0 |]
    let z = Tensor.Full([| 2; 1; 2 |], 0.0, Float64)

    let c =
        NeuroBench.measureRun NeuroBench.defaults g p (Map [ "x", xs ]) (runOf [ "h", z, z ])

    close 3.0 c.BatchACs
    close 0.0 c.BatchMACs

[<Fact>]
let ``a real run without input: one update per neuron, all activations zero, no effective ops`` () =
    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 4 lif
        |> Graph.population "out" 2 li
        |> Graph.connect "x" "h" (Projection.dense (Init.constant 1.0))
        |> Graph.connect "h" "out" (Projection.dense (Init.constant 1.0))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let inputs = Map [ "x", Tensor.Full([| 5; 3; 3 |], 0.0, Float64) ]
    let r = Graph.run g p (RunConfig.steps 5 dt) inputs

    let results =
        NeuroBench.evaluate NeuroBench.defaults g p [ NeuroBench.measureRun NeuroBench.defaults g p inputs r ]

    // Membranes stay at 0: only step 0 counts, (4 + 2) per sample. Spikes all zero.
    close 6.0 results.MembraneUpdates
    close 1.0 results.ActivationSparsity
    close 0.0 results.SynapticOperations.EffectiveACs
    close 0.0 results.SynapticOperations.EffectiveMACs
    // Dense per sample: 5 steps · (3 · 4 + 4 · 2) = 100.
    close 100.0 results.SynapticOperations.Dense

[<Fact>]
let ``event-driven runs: one accumulate per event and non-zero synapse, updates per reached neuron and reset, spikes on a grid`` () =
    let w2 = t64 [| 2; 2 |] [| 1.0; 1.0; 0.0; 1.0 |]

    let g =
        Graph.empty
        |> Graph.input "x" 3
        |> Graph.population "h" 2 lif
        |> Graph.population "out" 2 li
        |> Graph.connect "x" "h" (Projection.dense (Init.ofTensor w1))
        |> Graph.connect "h" "out" (Projection.dense (Init.ofTensor w2))

    let p = Graph.initAs Float64 (Random.key 0L) g
    let config = { Events.defaults with TEnd = 10e-3 }
    // Sample 0: inputs 0, 1, 2 at 1, 2, 3 ms; sample 1: input 1 at 5 ms and input 0 after TEnd.
    let xs =
        EventBuffer.ofEvents Float64 [| 3 |] 4 [| [| 1e-3, 0; 2e-3, 1; 3e-3, 2 |]; [| 5e-3, 1; 50e-3, 0 |] |]
    // h spikes: sample 0 neuron 1 at 4 and 4.5 ms (one 1-ms bin); sample 1 neuron 0 at 6 ms.
    let hs =
        EventBuffer.ofEvents Float64 [| 2 |] 4 [| [| 4e-3, 1; 4.5e-3, 1 |]; [| 6e-3, 0 |] |]

    let run =
        {
            Spikes = Map [ "h", hs ]
            MaxVoltage = Map [ "out", Tensor.Full([| 2; 2 |], 0.0, Float64) ]
            MaxTime = Map [ "out", Tensor.Full([| 2; 2 |], 0.0, Float64) ]
        }

    let c =
        NeuroBench.measureEvents
            { NeuroBench.defaults with
                EventBin = Some 1e-3
            }
            g
            p
            config
            (Map [ "x", xs ])
            run
    // x -> h (rows 1, 2, 0): sample 0 1 + 2 + 0 = 3, sample 1 2 (the late event is not counted): 5.
    // h -> out (rows 2, 1): sample 0 1 + 1 = 2, sample 1 2: 4. ACs 9; no MACs.
    close 9.0 c.BatchACs
    close 9.0 c.SampleACs
    close 0.0 c.BatchMACs
    // Dense: 4 input events · 2 + 3 spikes · 2 = 14.
    close 14.0 c.Dense
    // Updates: h reached 5 times, out 4 times, h's 3 resets: 12.
    close 12.0 c.MembraneUpdates
    // h on 10 bins of 1 ms: 2 · 10 = 20 cells per sample, 1 active in each: 38 zeros of 40.
    close 38.0 c.ActivationZeros
    close 40.0 c.Activations
    let r = NeuroBench.evaluate NeuroBench.defaults g p [ c ]
    close 4.5 r.SynapticOperations.EffectiveACs
    close 7.0 r.SynapticOperations.Dense
    close 6.0 r.MembraneUpdates
    close 0.95 r.ActivationSparsity

    // An LI readout has no spikes in an event run: naming it is an error that says so.
    let e =
        Assert.Throws<ArgumentException>(fun () ->
            NeuroBench.measureEvents
                { NeuroBench.defaults with
                    Activations = Some [ "out" ]
                }
                g
                p
                config
                (Map [ "x", xs ])
                run
            |> ignore)

    Assert.Contains("'out' has no spikes", e.Message)

[<Fact>]
let ``accuracy: withAccuracy counts the matches, chooseMaxCount breaks ties to the lowest index`` () =
    let b = measured |> NeuroBench.withAccuracy [| 1; 0 |] [| 1; 1 |]
    Assert.Equal(Some 1, b.Correct)
    close 0.5 (NeuroBench.evaluate NeuroBench.defaults net netParams [ b ]).ClassificationAccuracy.Value
    // Spikes [T = 2; B = 2; C = 3]: sample 0 counts [1, 2, 2] -> 1; sample 1 [0, 0, 0] -> 0.
    let z =
        t64 [| 2; 2; 3 |] [| 1.0; 1.0; 1.0; 0.0; 0.0; 0.0; 0.0; 1.0; 1.0; 0.0; 0.0; 0.0 |]

    Assert.Equal<int[]>([| 1; 0 |], NeuroBench.chooseMaxCount z)
    Assert.Equal<int[]>([| 2; 0 |], NeuroBench.argmax (t64 [| 2; 3 |] [| 0.1; 0.2; 0.3; 5.0; 5.0; 1.0 |]))

[<Fact>]
let ``bad input is an error that names what is wrong`` () =
    let throws (text: string) (f: unit -> obj) =
        let e = Assert.Throws<ArgumentException>(fun () -> f () |> ignore)
        Assert.Contains(text, e.Message)

    let run = runOf [ "h", hSpikes, hMem ]
    // An empty data set.
    throws "no batch was added" (fun () -> box (NeuroBench.evaluate NeuroBench.defaults net netParams []))
    // A population that is not in the graph.
    throws "'nope' is not a population" (fun () ->
        box (
            NeuroBench.measureRun
                { NeuroBench.defaults with
                    Activations = Some [ "nope" ]
                }
                net
                netParams
                (Map [ "x", x ])
                run
        ))
    // Input features that disagree with the source.
    throws "'x' has shape [2; 2; 4]" (fun () ->
        box (NeuroBench.measureRun NeuroBench.defaults net netParams (Map [ "x", Tensor.Full([| 2; 2; 4 |], 0.0, Float64) ]) run))
    // A batch that disagrees between nodes.
    throws "they must agree" (fun () -> box (NeuroBench.measureRun NeuroBench.defaults net netParams (Map [ "x", x.Narrow(1, 0, 1) ]) run))
    // A source without input, a population not recorded.
    throws "no tensor for the source 'x'" (fun () -> box (NeuroBench.measureRun NeuroBench.defaults net netParams Map.empty run))

    throws "did not record the membrane of the population 'h'" (fun () ->
        box (NeuroBench.measureRun NeuroBench.defaults net netParams (Map [ "x", x ]) (runOf [])))
    // Predictions for another batch size; a data set smaller than the samples processed.
    throws "2 predictions and 2 labels for a batch of 1" (fun () ->
        box (NeuroBench.withAccuracy [| 0; 1 |] [| 0; 1 |] { measured with Samples = 1 }))

    throws "DatasetSize is 1, but 2 samples" (fun () ->
        box (
            NeuroBench.evaluate
                { NeuroBench.defaults with
                    DatasetSize = Some 1
                }
                net
                netParams
                [ measured ]
        ))
