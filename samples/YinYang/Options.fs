/// The Yin-Yang sample's command line: the Argu arguments and their validation, kept apart from
/// Program.fs so that the tests can check what it accepts.
module YinYangOptions

open System
open Argu
open OptionChecks
open Chips

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Hidden of int
    | Steps of int
    | Seed of int64
    | Threads of int
    | Checkpoint of path: string
    | Export_Nir of path: string
    | Backend of BackendKind
    | Chip_Seed of int64
    | Calibration of path: string
    | Uncalibrated
    | Weight_Scale of float
    | Import_Nir of path: string
    | Plots of dir: string
    | Neurobench

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 30)"
            | Batch_Size _ -> "samples per batch (default 100)"
            | Learning_Rate _ -> "initial Adam learning rate, cosine-decayed (default 0.01)"
            | Hidden _ -> "hidden LIF neurons (default 120)"
            | Steps _ -> "time steps of 0.5 ms (default 60)"
            | Seed _ -> "seed of data, initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Checkpoint _ -> "save a checkpoint here after every epoch and resume from it if present"
            | Export_Nir _ -> "after training, write the network here as a NIR file"
            | Backend _ -> Usage.backend
            | Chip_Seed _ -> Usage.chipSeed
            | Calibration _ -> Usage.calibration
            | Uncalibrated -> Usage.uncalibrated
            | Weight_Scale _ -> Usage.weightScale
            | Import_Nir _ -> "instead of training, evaluate the network of this NIR file on the test set"
            | Plots _ -> SamplePlots.usage
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
        Seed: int64
        Threads: int option
        Checkpoint: string option
        ExportNir: string option
        ImportNir: string option
        Plots: string option
        Chip: ChipSettings
        /// Print the NeuroBench metrics over the test set at the end.
        NeuroBench: bool
    }

/// Examples in the training split (SnnFunc.Data.YinYang.splits): the largest batch, since the
/// ragged last batch is dropped and a larger one would leave no batch at all.
let trainCount = 5000

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors (its message and the usage) and for an invalid value (one line
/// naming the option and the allowed range).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        {
            Epochs = args.GetResult(Epochs, 30)
            BatchSize = args.GetResult(Batch_Size, 100)
            LearningRate = args.GetResult(Learning_Rate, 0.01)
            Hidden = args.GetResult(Hidden, 120)
            Steps = args.GetResult(Steps, 60)
            Seed = args.GetResult(Seed, 0L)
            Threads = args.TryGetResult Threads
            Checkpoint = args.TryGetResult Checkpoint
            ExportNir = args.TryGetResult Export_Nir
            ImportNir = args.TryGetResult Import_Nir
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
            // Epochs times the batches per epoch is the schedule's length: it must fit an int.
            intIn "epochs" 1 100_000 s.Epochs
            intIn "batch-size" 1 trainCount s.BatchSize
            positive "learning-rate" s.LearningRate
            intIn "hidden" 1 100_000 s.Hidden
            intIn "steps" 1 100_000 s.Steps
            s.Threads |> Option.bind (intIn "threads" 1 1024)
            path "checkpoint" s.Checkpoint
            path "export-nir" s.ExportNir
            path "import-nir" s.ImportNir
            existingFile "import-nir" s.ImportNir
            folder "plots" s.Plots
            yield! Chips.problems s.Chip
            (if
                 s.Chip.Backend = Bss2
                 && (s.ImportNir.IsSome || s.ExportNir.IsSome || s.Checkpoint.IsSome)
             then
                 Some "--backend bss2 trains on the emulated chip without checkpoints or NIR files"
             else
                 None)
            (if s.ImportNir.IsSome && s.Plots.IsSome then
                 Some "--import-nir evaluates a network without training it, so there are no training curves for --plots"
             else
                 None)
            (if s.Chip.Backend = Bss2 && s.NeuroBench then
                 Some "--neurobench measures the software network: use it with --backend software"
             else
                 None)
            (if s.ImportNir.IsSome && s.NeuroBench then
                 Some "--neurobench measures the trained network: it does not apply to --import-nir"
             else
                 None)
            (if s.ImportNir.IsSome && s.ExportNir.IsSome then
                 Some "--import-nir evaluates a network without training it, so there is nothing to --export-nir"
             else
                 None)
        ]

    OptionChecks.parseWith "YinYang" settings problems argv
