(**
---
title: Networks as data, and NIR
category: Tutorials
categoryindex: 1
index: 3
---
*)
(*** condition: prepare ***)
#r "../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"
(*** condition: fsx ***)
#if FSX
#r "nuget: SnnFunc"
#endif
(**
# Networks as data, and NIR

A `Graph` is a value: named inputs, populations of neurons and projections between them, checked when it is
built (unknown nodes, mismatched shapes and cycles without a population are errors naming the node). Neuron
parameters live in the parameter tree like weights, one value per population or one per neuron, so time
constants and thresholds learn too. Here a recurrent network with per-neuron membrane time constants drawn
uniformly in [5, 20) ms:
*)
open SnnFunc

let dt = 0.5e-3
let lif = { Snn.Lif.defaults with Dt = dt }

let g =
    Graph.empty
    |> Graph.input "x" 5
    |> Graph.population
        "hidden"
        100
        (Neuron.lif lif
         |> Neuron.withInit "tauMem" (Init.uniform 5e-3 20e-3))
    |> Graph.population
        "out"
        3
        (Neuron.li { Snn.Li.defaults with Dt = dt })
    |> Graph.connect
        "x"
        "hidden"
        (Projection.dense (Init.normalWith 6.0))
    |> Graph.connect
        "hidden"
        "hidden"
        (Projection.dense Init.normal |> Projection.inhibitory) // one step later
    |> Graph.connect
        "hidden"
        "out"
        (Projection.dense (Init.normalWith 2.0)
         |> Projection.withBias Init.zeros)

let p = Graph.init (Random.key 0L) g

printfn
    "tauMem: %A, x->hidden weight: %A"
    p["hidden"].["tauMem"].Shape
    p["x->hidden"].["weight"].Shape
(*** include-output ***)

(**
`Graph.run` simulates the graph on a time grid and records every population's spikes, membrane and current. A
loss of any of them differentiates with respect to every parameter, the time constants included:
*)
let x = Random.bernoulli (Random.key 1L) 0.05 [| 60; 16; 5 |] // [steps; batch; inputs]
let labels = Array.init 16 (fun i -> i % 3)

let loss (q: GraphParams) =
    let r = Graph.run g q (RunConfig.steps 60 dt) (Map [ ("x", x) ])
    Loss.crossEntropy (Decode.maxOverTime r["out"].Membrane) labels

let value, grads = Ad.valueAndGrad loss p
let r = Graph.run g p (RunConfig.steps 60 dt) (Map [ ("x", x) ])

printfn
    "loss %.4f; %.0f hidden spikes in the batch"
    (value.ToScalar())
    (r["hidden"].Spikes.Sum().ToScalar())

printfn
    "|d loss / d tauMem| = %.3e"
    (grads["hidden"].["tauMem"].Abs().Sum().ToScalar())
(*** include-output ***)

(**
For inference, `Graph.infer` takes the same arguments and returns the same observables for the nodes the run
records. On a feed-forward graph of dense projections into LIF and LI populations it runs one step of the whole
graph at a time per sample, without the `[T; B; N]` intermediates that the gradients need (on MNIST16, 1.6-2.5x
`Graph.run`); any other graph, like the recurrent one above, and values traced by a transform run `Graph.run`:
*)
let ff =
    Graph.empty
    |> Graph.input "x" 5
    |> Graph.population "hidden" 100 (Neuron.lif lif)
    |> Graph.population "out" 3 (Neuron.li { Snn.Li.defaults with Dt = dt })
    |> Graph.connect "x" "hidden" (Projection.dense (Init.normalWith 6.0))
    |> Graph.connect "hidden" "out" (Projection.dense (Init.normalWith 2.0))

let pf = Graph.init (Random.key 0L) ff
let readout = RunConfig.steps 60 dt |> RunConfig.recording [ "out" ]
let fast = Graph.infer ff pf readout (Map [ ("x", x) ])
let slow = Graph.run ff pf readout (Map [ ("x", x) ])

printfn
    "readout membranes [%s]; largest difference from Graph.run %g"
    (System.String.Join("; ", fast["out"].Membrane.Shape))
    ((fast["out"].Membrane - slow["out"].Membrane).Abs().Max().ToScalar())
(*** include-output ***)

(**
## NeuroBench metrics

[NeuroBench](https://neurobench.ai)'s metrics of a network, with its reference harness's definitions: the static
ones from the parameters, the workload ones from a run's observables, batch by batch. `Reference` aggregates
as the harness does (an AC/MAC decision per layer call for the whole batch, batch-size weighting);
`Corrected` decides per sample and weighs every sample once:
*)
let measured =
    NeuroBench.measureRun NeuroBench.defaults g p (Map [ ("x", x) ]) r
    |> NeuroBench.withAccuracy
        (NeuroBench.argmax (Decode.maxOverTime r["out"].Membrane))
        labels

let corrected =
    { NeuroBench.defaults with
        Mode = NeuroBenchMode.Corrected
    }

printfn
    "%s"
    (NeuroBench.format
        [
            NeuroBench.evaluate NeuroBench.defaults g p [ measured ]
            NeuroBench.evaluate corrected g p [ measured ]
        ])
(*** include-output ***)

(**
## NIR

The [Neuromorphic Intermediate Representation](https://neuroir.org) is an HDF5 file format that simulators and
chips share. SnnFunc writes its LIF and LI populations as NIR's CubaLIF and CubaLI and reads every NIR
primitive. NIR does not fix its time unit, so reading and writing name it (`NirOptions.milliseconds`,
`seconds` as Norse and snnTorch write, or `steps dt`). A NIR graph ends in output nodes:
*)
let exported =
    g |> Graph.transform "output" Identity |> Graph.edge "out" "output"

let file =
    System.IO.Path.Combine(
        System.IO.Path.GetTempPath(),
        "snnfunc-tutorial.nir"
    )

Nir.write file exported p
let g2, p2 = Nir.read file
let r2 = Graph.run g2 p2 (RunConfig.steps 60 dt) (Map [ ("x", x) ])

let difference =
    (r2["output"].Output - r["out"].Membrane).Abs().Max().ToScalar()

printfn
    "read back: %d nodes; largest difference of the readout after the round trip: %g"
    (List.length g2.Nodes)
    difference
(*** include-output ***)
