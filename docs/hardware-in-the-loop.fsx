(**
---
title: Hardware in the loop
category: Tutorials
categoryindex: 1
index: 5
---
*)
(*** condition: prepare ***)
#r "../src/SnnFunc/bin/Release/net10.0/SnnFunc.dll"
#r "../src/SnnFunc.Backends/bin/Release/net10.0/SnnFunc.Backends.dll"
(*** condition: fsx ***)
#if FSX
#r "nuget: SnnFunc.Backends"
#endif
(**
# Hardware in the loop

The BrainScaleS-2 chip runs spiking networks in analog circuits, 1000 times faster than biology, and every
circuit deviates a little from its design (fixed-pattern noise). SnnFunc's emulator (`Bss2Emulator`) models a
chip instance with those deviations, 6-bit weights, trial-to-trial noise and the chip's readouts (spike
timestamps, 8-bit CADC membrane samples). Hardware-in-the-loop training runs the forward pass on the chip and
takes the gradient from the software model along the chip's trajectory, as hxtorch does.

A chip instance is a seed; a calibration trims its circuits to target values:
*)
open SnnFunc
open SnnFunc.Backends

let chipInstance = Chip.create 0L

let trim =
    Calibration.calibrate
        chipInstance
        CalibrationTargets.defaults
        (Random.key 0L)

let net =
    Graph.empty
    |> Graph.input "x" 20
    |> Graph.population "hidden" 30 (Neuron.lif Snn.Lif.defaults)
    |> Graph.population "out" 4 (Neuron.li Snn.Li.defaults)
    |> Graph.connect
        "x"
        "hidden"
        (Projection.dense (Init.normalWith 5.0))
    |> Graph.connect
        "hidden"
        "out"
        (Projection.dense (Init.normalWith 2.0))

let p = Graph.init (Random.key 0L) net

let x =
    (Random.uniform (Random.key 1L) [| 30; 8; 20 |]).Lt(0.1).Convert
        DType.Float32 // [steps; batch; inputs]

let labels = Array.init 8 (fun i -> i % 4)

let chip =
    Bss2Emulator(
        chipInstance,
        trim,
        { Bss2Config.defaults with
            TraceScales = Map [ ("out", 8.0) ]
        }
    )

let rc = RunConfig.steps 30 1e-3

(**
One training step: the batch on the chip (fresh trial noise), then the gradient of a loss of what the chip
returned. The hidden layer's spikes and the readout's CADC samples come from the chip; the surrogate gradient
from the software model:
*)
let observed = chip.Run(net, p, Map [ ("x", x) ], rc)

let loss (q: GraphParams) =
    let r = Hil.runWith ((=) "out") net q rc (Map [ ("x", x) ]) observed
    Loss.crossEntropy (Decode.maxOverTime r["out"].Membrane) labels

let value, grads = Ad.valueAndGrad loss p
let software = Graph.run net p rc (Map [ ("x", x) ])

printfn
    "hidden spikes: %.0f on the chip, %.0f in software"
    (observed.Dense["hidden"].Spikes.Sum().ToScalar())
    (software["hidden"].Spikes.Sum().ToScalar())

printfn
    "loss of the chip's readout %.4f; |gradient| to the hidden weights %.3e"
    (value.ToScalar())
    (grads["x->hidden"].["weight"].Abs().Sum().ToScalar())

match observed.Account with
| Some account -> printfn "account: %A" account
| None -> ()
(*** include-output ***)

(**
`samples/Mnist16`, `samples/YinYang` and `samples/YinYangEvent` train this way with `--backend bss2`; on a
calibrated chip Mnist16 reaches 94.7 % against 95.6 % in software.
*)
