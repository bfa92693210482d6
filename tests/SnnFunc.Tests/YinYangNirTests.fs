/// The Yin-Yang sample's NIR exchange: the layer chain written as NIR and read back as a graph of
/// NIR neurons (Euler CubaLIF/CubaLI) computes the same logits as the chain's fused kernels.
module SnnFunc.Tests.YinYangNirTests

open System
open System.IO
open Xunit
open SnnFunc
open SnnFunc.Data

[<Fact>]
let ``the exported network read back gives the layer chain's logits and accuracy`` () =
    let dt = 0.5e-3
    let lif = { Snn.Lif.defaults with Dt = dt }
    let li = { Snn.Li.defaults with Dt = dt }

    let dense scale n =
        Layers.denseWith
            { Layers.denseDefaults with
                Scale = scale
                DType = Float64
                Bias = n = 3
            }
            n

    let net = Layers.serial [ dense 6.0 40; Layers.lif lif; dense 2.0 3; Layers.li li ]
    let p, _ = Layer.init net (Random.key 3L) [| 5 |]
    // A nonzero bias, so that its export is exercised too.
    let p =
        match p with
        | Children [ a; b; Weights d; e ] -> Children [ a; b; Weights(d.Add("b", Tensor.FromArray [| 0.1; -0.2; 0.05 |])); e ]
        | _ -> failwith "unexpected parameters"

    let data = (YinYang.splits 0L).Test
    let spikes = Encode.latency 60 dt 15e-3 false (data.X.Convert Float64)
    let expected = Layer.apply net p spikes |> Decode.maxOverTime

    let path =
        Path.Combine(Path.GetTempPath(), "snnfunc-yy-" + Guid.NewGuid().ToString("N") + ".nir")

    try
        YinYangNir.export path lif li p
        let imported = YinYangNir.import path
        Assert.Equal(dt, imported.Dt, 15)
        Assert.Equal(("x", "output"), (imported.Input, imported.Output))
        let actual = YinYangNir.logits imported spikes
        let a, e = actual.ToDoubleArray(), expected.ToDoubleArray()
        let worst = Array.map2 (fun x y -> abs (x - y)) a e |> Array.max
        Assert.True(worst < 1e-9, $"largest logit difference %g{worst}")
        Assert.True(Array.max e - Array.min e > 0.1, "the logits differ between samples")
        Assert.Equal(Loss.accuracy expected data.Labels, Loss.accuracy actual data.Labels)
    finally
        File.Delete path

[<Fact>]
let ``a NIR network of another shape is refused with what it has`` () =
    let path =
        Path.Combine(Path.GetTempPath(), "snnfunc-yy-" + Guid.NewGuid().ToString("N") + ".nir")

    let g =
        Graph.empty
        |> Graph.input "x" 4
        |> Graph.population "h" 3 (Neuron.lif Snn.Lif.defaults)
        |> Graph.connect "x" "h" (Projection.dense Init.normal)

    try
        Nir.write path g (Graph.init (Random.key 0L) g)
        let e = Assert.ThrowsAny<exn>(fun () -> YinYangNir.import path |> ignore)
        Assert.Contains("one input of 5 features", e.Message)
        Assert.Contains("x [|4|]", e.Message)
    finally
        File.Delete path
