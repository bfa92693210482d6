/// The event-based Yin-Yang sample's command line: the Argu arguments and their validation, kept
/// apart from Program.fs so that the tests can check what it accepts.
module YinYangEventOptions

open Argu
open OptionChecks
open Chips

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Lr_Decay of float
    | Clip of float
    | Hidden of int
    | Gradient of string
    | Seed of int64
    | Seeds of int
    | Threads of int
    | Plots of dir: string
    | Backend of BackendKind
    | Chip_Seed of int64
    | Calibration of path: string
    | Uncalibrated
    | Weight_Scale of float
    | Neurobench

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 40)"
            | Batch_Size _ -> "samples per batch (default 32)"
            | Learning_Rate _ -> "initial Adam learning rate (default 0.005)"
            | Lr_Decay _ -> "learning-rate factor per epoch (default 0.95)"
            | Clip _ -> "clip each gradient to this global norm, 0 for none (default 1)"
            | Hidden _ -> "hidden LIF neurons (default 200)"
            | Gradient _ -> "eventprop (the adjoint, default) or solver (AD through the spike-time solver)"
            | Seed _ -> "seed of data, initialisation and shuffling (default 0)"
            | Seeds _ -> "train this many seeds (seed, seed+1, ...) and report mean and std (default 1)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Plots _ -> SamplePlots.usage
            | Backend _ -> Usage.backend
            | Chip_Seed _ -> Usage.chipSeed
            | Calibration _ -> Usage.calibration
            | Uncalibrated -> Usage.uncalibrated
            | Weight_Scale _ -> Usage.weightScale
            | Neurobench ->
                "after training, print the NeuroBench metrics of the network over the test set (reference and corrected aggregation)"

/// The validated options.
type Settings =
    {
        Epochs: int
        BatchSize: int
        LearningRate: float
        LrDecay: float
        Clip: float
        Hidden: int
        Gradient: string
        Seed: int64
        Seeds: int
        Threads: int option
        Plots: string option
        Chip: ChipSettings
        /// Print the NeuroBench metrics over the test set at the end of each seed.
        NeuroBench: bool
    }

/// Examples in the training split (SnnFunc.Data.YinYang.splits).
let trainCount = 5000

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors and for an invalid value (one line naming the option).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        {
            Epochs = args.GetResult(Epochs, 40)
            BatchSize = args.GetResult(Batch_Size, 32)
            LearningRate = args.GetResult(Learning_Rate, 5e-3)
            LrDecay = args.GetResult(Lr_Decay, 0.95)
            Clip = args.GetResult(Clip, 1.0)
            Hidden = args.GetResult(Hidden, 200)
            Gradient = args.GetResult(Gradient, "eventprop").ToLowerInvariant()
            Seed = args.GetResult(Seed, 0L)
            Seeds = args.GetResult(Seeds, 1)
            Threads = args.TryGetResult Threads
            Plots = args.TryGetResult Plots
            Chip =
                {
                    Backend = args.GetResult(Backend, Software)
                    ChipSeed = args.GetResult(Chip_Seed, 0L)
                    Calibration = args.TryGetResult Calibration
                    Uncalibrated = args.Contains Uncalibrated
                    WeightScale = args.TryGetResult Weight_Scale
                }
            NeuroBench = args.Contains Neurobench
        }

    let problems (s: Settings) =
        [
            intIn "epochs" 1 100_000 s.Epochs
            intIn "batch-size" 1 trainCount s.BatchSize
            positive "learning-rate" s.LearningRate
            between "lr-decay" 1e-6 1.0 s.LrDecay
            between "clip" 0.0 1e12 s.Clip
            intIn "hidden" 1 100_000 s.Hidden
            (if s.Gradient = "eventprop" || s.Gradient = "solver" then
                 None
             else
                 Some $"--gradient must be eventprop or solver, got '%s{s.Gradient}'")
            intIn "seeds" 1 100 s.Seeds
            s.Threads |> Option.bind (intIn "threads" 1 1024)
            folder "plots" s.Plots
            yield! Chips.problems s.Chip
            (if s.Chip.Backend = Bss2 && s.NeuroBench then
                 Some "--neurobench measures the software network: use it with --backend software"
             else
                 None)
        ]

    OptionChecks.parseWith "YinYangEvent" settings problems argv
