/// The event-based MNIST16 sample's command line: the Argu arguments and their validation, kept
/// apart from Program.fs so that the tests can check what it accepts.
module Mnist16EventOptions

open Argu
open OptionChecks

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Lr_Decay of float
    | Hidden of int
    | Theta of float
    | Gradient of string
    | Train_Count of int
    | Test_Count of int
    | Seed of int64
    | Threads of int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 12)"
            | Batch_Size _ -> "samples per batch (default 32)"
            | Learning_Rate _ -> "initial Adam learning rate (default 0.01)"
            | Lr_Decay _ -> "learning-rate factor per epoch (default 0.9)"
            | Hidden _ -> "hidden LIF neurons (default 128)"
            | Theta _ -> "pixels at or below this value send no spike (default 0.2)"
            | Gradient _ -> "eventprop (the adjoint, default) or solver (AD through the spike-time solver)"
            | Train_Count _ -> "training images (default 8000)"
            | Test_Count _ -> "test images (default 2000)"
            | Seed _ -> "seed of initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"

/// The validated options.
type Settings =
    {
        Epochs: int
        BatchSize: int
        LearningRate: float
        LrDecay: float
        Hidden: int
        Theta: float
        Gradient: string
        TrainCount: int
        TestCount: int
        Seed: int64
        Threads: int option
    }

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors and for an invalid value (one line naming the option).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        {
            Epochs = args.GetResult(Epochs, 12)
            BatchSize = args.GetResult(Batch_Size, 32)
            LearningRate = args.GetResult(Learning_Rate, 1e-2)
            LrDecay = args.GetResult(Lr_Decay, 0.9)
            Hidden = args.GetResult(Hidden, 128)
            Theta = args.GetResult(Theta, 0.2)
            Gradient = args.GetResult(Gradient, "eventprop").ToLowerInvariant()
            TrainCount = args.GetResult(Train_Count, 8000)
            TestCount = args.GetResult(Test_Count, 2000)
            Seed = args.GetResult(Seed, 0L)
            Threads = args.TryGetResult Threads
        }

    let problems (s: Settings) =
        [
            intIn "epochs" 1 100_000 s.Epochs
            intIn "train-count" 1 60_000 s.TrainCount
            intIn "test-count" 1 10_000 s.TestCount
            intIn "batch-size" 1 s.TrainCount s.BatchSize
            positive "learning-rate" s.LearningRate
            between "lr-decay" 1e-6 1.0 s.LrDecay
            intIn "hidden" 1 100_000 s.Hidden
            fraction "theta" 0.0 1.0 s.Theta
            (if s.Gradient = "eventprop" || s.Gradient = "solver" then
                 None
             else
                 Some $"--gradient must be eventprop or solver, got '%s{s.Gradient}'")
            s.Threads |> Option.bind (intIn "threads" 1 1024)
        ]

    OptionChecks.parseWith "Mnist16Event" settings problems argv
