/// Trains a recurrent spiking network on the delayed-XOR memory task (DelayedXorTask): two cue
/// spikes 60 ms apart, the answer (do they differ?) read out after a silent gap. The network is a
/// Graph (DelayedXorNet): learnable per-input delays, a recurrent LIF population with learnable
/// membrane time constants, an LI readout. `--no-recurrence` and `--no-delays` take its memory away.
/// Ends with the line `test_accuracy=<fraction>`.
module Program

open DelayedXorTask
open SnnFunc

[<EntryPoint>]
let main argv =
    let s =
        match DelayedXorOptions.parse argv with
        | Ok s -> s
        | Error(code, message) ->
            eprintfn "%s" message
            exit code

    s.Threads |> Option.iter (fun n -> Kernels.Parallelism.MaxThreads <- n)
    let layout = layoutOf s
    let train, test = splits layout s.Seed s.TrainCount s.TestCount

    printfn
        "delayed XOR: train %d, test %d trials of %d steps of 1 ms; cues %d ms apart (jitter ±%d), gap %d ms, window %d ms, noise %g Hz"
        train.Count
        test.Count
        (steps layout)
        s.Delay
        s.Jitter
        s.Gap
        s.Window
        s.Noise

    printfn
        "%d-%d-2 LIF network, recurrence %s, input delays %s; batch %d, lr %g (tau %g s, delay %g steps)"
        (inputs layout)
        s.Hidden
        (if s.Recurrence then "on" else "off (--no-recurrence)")
        (if s.Delays then "learned" else "fixed at 0 (--no-delays)")
        s.BatchSize
        s.LearningRate
        s.TauLearningRate
        s.DelayLearningRate

    let outcome =
        try
            DelayedXorNet.train s train test (printfn "%s")
        with :? System.IO.InvalidDataException as e ->
            eprintfn "DelayedXor: cannot resume from the checkpoint: %s" e.Message
            exit 1

    let taus = outcome.Parameters["h"].["tauMem"].ToDoubleArray()

    printfn
        "training took %.1f s; hidden tauMem now %.1f .. %.1f ms (mean %.1f)"
        outcome.Seconds
        (Array.min taus * 1e3)
        (Array.max taus * 1e3)
        (Array.average taus * 1e3)

    // --plots: the curves, and the input and hidden spikes and hidden membranes of test trial 0.
    s.Plots
    |> Option.iter (fun dir ->
        SamplePlots.curves "delayed XOR" dir outcome.History
        let x, labels = batch test [| 0..7 |]

        let r =
            Graph.run (DelayedXorNet.graph s) outcome.Parameters (RunConfig.steps (steps layout) dt) (Map [ "x", x ])

        let answer = if labels[0] = 1 then "cues differ" else "cues equal"

        Plot.raster dt x
        |> Plot.withTitle $"delayed XOR: input spikes of test trial 0 (%s{answer})"
        |> SamplePlots.write dir "input-raster.png"

        Plot.raster dt r["h"].Spikes
        |> Plot.withTitle $"delayed XOR: hidden spikes of test trial 0 (%s{answer})"
        |> SamplePlots.write dir "raster.png"

        Plot.tracesOf 0 (Plot.mostActive 4 0 (r["h"].Spikes)) dt (Some Snn.Lif.defaults.VTh) r["h"].Membrane
        |> Plot.withTitle "delayed XOR: hidden membranes of test trial 0"
        |> SamplePlots.write dir "traces.png")

    printfn "hidden_spikes_per_trial=%.1f" outcome.HiddenSpikes
    printfn "test_accuracy=%.4f" outcome.TestAccuracy
    0
