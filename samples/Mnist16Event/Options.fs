/// The event-based MNIST16 sample's command line: the Argu arguments and their validation, kept
/// apart from Program.fs so that the tests can check what it accepts.
module Mnist16EventOptions

open Argu
open OptionChecks

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Hidden_Learning_Rate of float
    | Lr_Decay of float
    | Hidden of int
    | Theta of float
    | Dropout of float
    | Init_Hidden of mean: float * std: float
    | Noise of float
    | Bump of float
    | Ema of float
    | Late_Spikes of float
    | Gradient of string
    | Train_Count of int
    | Test_Count of int
    | Seed of int64
    | Threads of int
    | Plots of dir: string
    | Checkpoint of path: string
    | Neurobench

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 14)"
            | Batch_Size _ -> "samples per batch (default 8)"
            | Learning_Rate _ -> "initial Adam learning rate of the hidden->out weights (default 0.05)"
            | Hidden_Learning_Rate _ -> "initial Adam learning rate of the input->hidden weights (default 0.01)"
            | Lr_Decay _ -> "learning-rate factor per epoch (default 0.85)"
            | Hidden _ -> "hidden LIF neurons (default 128)"
            | Theta _ -> "pixels at or below this value send no spike (default 0.03)"
            | Init_Hidden _ -> "mean and std of the Gaussian input->hidden weights (default 0.1 0.3)"
            | Dropout _ -> "training only: probability that an input pixel is dropped (default 0)"
            | Noise _ -> "training only: std of Gaussian noise added to the pixel values before coding (default 0)"
            | Bump _ -> "input weights of a hidden neuron silent for the whole batch grow by this (default 0.0005)"
            | Ema _ -> "decay of the moving average of the weights that is evaluated and saved, 0 for the last iterate (default 0.999)"
            | Late_Spikes _ ->
                "weight of a loss on the hidden spike times, the mean per sample of the sum of (TEnd - t)/TEnd over them: it pushes spikes late and out of the window, so fewer fire (default 0.002)"
            | Gradient _ -> "eventprop (the adjoint, default) or solver (AD through the spike-time solver)"
            | Train_Count _ -> "training images (default 8000)"
            | Test_Count _ -> "test images (default 2000)"
            | Seed _ -> "seed of initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Plots _ -> SamplePlots.usage
            | Checkpoint _ -> "an .npz of the trained weights: loaded when it exists (training skipped), else written after training"
            | Neurobench ->
                "after training, print the NeuroBench metrics of the network over the test set (reference and corrected aggregation)"

/// The validated options.
type Settings =
    {
        Epochs: int
        BatchSize: int
        LearningRate: float
        HiddenLearningRate: float
        LrDecay: float
        Hidden: int
        Theta: float
        InitHidden: float * float
        Dropout: float
        Noise: float
        Bump: float
        /// The decay of the weights' moving average (Optim.movingAverage); 0: the last iterate.
        Ema: float
        /// The weight of the hidden spike-time loss (fewer hidden spikes); 0: none.
        LateSpikes: float
        Gradient: string
        TrainCount: int
        TestCount: int
        Seed: int64
        Threads: int option
        Plots: string option
        Checkpoint: string option
        /// Print the NeuroBench metrics over the test set at the end.
        NeuroBench: bool
    }

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors and for an invalid value (one line naming the option).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        {
            Epochs = args.GetResult(Epochs, 14)
            BatchSize = args.GetResult(Batch_Size, 8)
            LearningRate = args.GetResult(Learning_Rate, 0.05)
            HiddenLearningRate = args.GetResult(Hidden_Learning_Rate, 0.01)
            LrDecay = args.GetResult(Lr_Decay, 0.85)
            Hidden = args.GetResult(Hidden, 128)
            Theta = args.GetResult(Theta, 0.03)
            InitHidden = args.GetResult(Init_Hidden, (0.1, 0.3))
            Dropout = args.GetResult(Dropout, 0.0)
            Noise = args.GetResult(Noise, 0.0)
            Bump = args.GetResult(Bump, 5e-4)
            Ema = args.GetResult(Ema, 0.999)
            LateSpikes = args.GetResult(Late_Spikes, 0.002)
            Gradient = args.GetResult(Gradient, "eventprop").ToLowerInvariant()
            TrainCount = args.GetResult(Train_Count, 8000)
            TestCount = args.GetResult(Test_Count, 2000)
            Seed = args.GetResult(Seed, 0L)
            Threads = args.TryGetResult Threads
            Plots = args.TryGetResult Plots
            Checkpoint = args.TryGetResult Checkpoint
            NeuroBench = args.Contains Neurobench
        }

    let problems (s: Settings) =
        [
            intIn "epochs" 1 100_000 s.Epochs
            intIn "train-count" 1 60_000 s.TrainCount
            intIn "test-count" 1 10_000 s.TestCount
            intIn "batch-size" 1 s.TrainCount s.BatchSize
            positive "learning-rate" s.LearningRate
            positive "hidden-learning-rate" s.HiddenLearningRate
            between "lr-decay" 1e-6 1.0 s.LrDecay
            intIn "hidden" 1 100_000 s.Hidden
            fraction "theta" 0.0 1.0 s.Theta
            fraction "dropout" 0.0 0.99 s.Dropout
            positive "init-hidden std" (snd s.InitHidden)
            fraction "noise" 0.0 1.0 s.Noise
            fraction "bump" 0.0 1.0 s.Bump
            fraction "ema" 0.0 1.0 s.Ema
            between "late-spikes" 0.0 100.0 s.LateSpikes
            (if s.Gradient = "eventprop" || s.Gradient = "solver" then
                 None
             else
                 Some $"--gradient must be eventprop or solver, got '%s{s.Gradient}'")
            s.Threads |> Option.bind (intIn "threads" 1 1024)
            folder "plots" s.Plots
            path "checkpoint" s.Checkpoint
        ]

    OptionChecks.parseWith "Mnist16Event" settings problems argv
