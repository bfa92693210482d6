/// The DelayedXor sample's command line: the Argu arguments and their validation, kept apart from
/// Program.fs so that the tests can check what it accepts.
module DelayedXorOptions

open System
open Argu
open OptionChecks

type Arguments =
    | Epochs of int
    | Batch_Size of int
    | Learning_Rate of float
    | Tau_Learning_Rate of float
    | Delay_Learning_Rate of float
    | Hidden of int
    | Inputs_Per_Cue of int
    | Delay of int
    | Gap of int
    | Window of int
    | Jitter of int
    | Noise of float
    | No_Recurrence
    | No_Delays
    | Train_Count of int
    | Test_Count of int
    | Seed of int64
    | Threads of int
    | Checkpoint of path: string
    | Plots of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Epochs _ -> "training epochs (default 20)"
            | Batch_Size _ -> "trials per batch (default 64)"
            | Learning_Rate _ -> "initial Adam learning rate of the weights, cosine-decayed (default 0.01)"
            | Tau_Learning_Rate _ ->
                "Adam learning rate of the hidden neurons' membrane time constants, in seconds (default 1e-4; 0 freezes them)"
            | Delay_Learning_Rate _ -> "Adam learning rate of the input delays, in steps (default 0.2; 0 freezes them)"
            | Hidden _ -> "hidden LIF neurons (default 32)"
            | Inputs_Per_Cue _ -> "input neurons per cue value: a cue spikes on all of its group (default 8)"
            | Delay _ -> "steps of 1 ms between the onsets of the two cues (default 60)"
            | Gap _ -> "silent steps from the latest second cue to the response window (default 20)"
            | Window _ -> "steps of the response window, where the readout's maximum is the answer (default 10)"
            | Jitter _ -> "random shift of each cue's time, up to this many steps either way (default 2)"
            | Noise _ -> "background spikes per second on every input neuron (default 5)"
            | No_Recurrence -> "ablation: no recurrent edge h -> h"
            | No_Delays -> "ablation: input delays fixed at 0 (no learnable delays)"
            | Train_Count _ -> "training trials (default 2048)"
            | Test_Count _ -> "test trials (default 512)"
            | Seed _ -> "seed of data, initialisation and shuffling (default 0)"
            | Threads _ -> "kernel threads (default: all cores)"
            | Checkpoint _ -> "save a checkpoint here after every epoch and resume from it if present"
            | Plots _ -> SamplePlots.usage

/// The validated options.
type Settings =
    {
        Epochs: int
        BatchSize: int
        LearningRate: float
        TauLearningRate: float
        DelayLearningRate: float
        Hidden: int
        InputsPerCue: int
        Delay: int
        Gap: int
        Window: int
        Jitter: int
        Noise: float
        Recurrence: bool
        Delays: bool
        TrainCount: int
        TestCount: int
        Seed: int64
        Threads: int option
        Checkpoint: string option
        Plots: string option
    }

/// The defaults (what an empty command line gives).
let defaults =
    {
        Epochs = 20
        BatchSize = 64
        LearningRate = 0.01
        TauLearningRate = 1e-4
        DelayLearningRate = 0.2
        Hidden = 32
        InputsPerCue = 8
        Delay = 60
        Gap = 20
        Window = 10
        Jitter = 2
        Noise = 5.0
        Recurrence = true
        Delays = true
        TrainCount = 2048
        TestCount = 512
        Seed = 0L
        Threads = None
        Checkpoint = None
        Plots = None
    }

/// The problems of a set of settings, first one first (empty when they are valid).
let problems (s: Settings) =
    [
        // Epochs times the batches per epoch is the schedule's length: it must fit an int.
        intIn "epochs" 1 100_000 s.Epochs
        intIn "train-count" 4 1_000_000 s.TrainCount
        intIn "test-count" 4 1_000_000 s.TestCount
        // A batch larger than the training set would leave no batch (the ragged one is dropped).
        intIn "batch-size" 1 s.TrainCount s.BatchSize
        positive "learning-rate" s.LearningRate
        // Adam moves a parameter by about its learning rate per step: time constants by seconds.
        between "tau-learning-rate" 0.0 1e-2 s.TauLearningRate
        between "delay-learning-rate" 0.0 100.0 s.DelayLearningRate
        intIn "hidden" 1 100_000 s.Hidden
        intIn "inputs-per-cue" 1 10_000 s.InputsPerCue
        // The memory task: the cues are further apart than the neurons' time constants (10 ms).
        intIn "delay" 1 10_000 s.Delay
        intIn "gap" 0 10_000 s.Gap
        intIn "window" 1 10_000 s.Window
        // Jittered cues keep their order: the second comes at least one step after the first.
        intIn "jitter" 0 ((s.Delay - 1) / 2) s.Jitter
        // At most one spike per step of 1 ms: a rate below 1000 per second.
        (if s.Noise >= 0.0 && s.Noise < 1000.0 then
             None
         else
             Some $"--noise must be a number in [0, 1000) spikes per second, got %g{s.Noise}")
        s.Threads |> Option.bind (intIn "threads" 1 1024)
        path "checkpoint" s.Checkpoint
        folder "plots" s.Plots
    ]

/// Parses and validates a command line. Error(exit code, text for stderr): 0 with the usage for
/// --help, 2 for Argu's errors (its message and the usage) and for an invalid value (one line
/// naming the option and the allowed range).
let parse (argv: string[]) : Result<Settings, int * string> =
    let settings (args: ParseResults<Arguments>) =
        let d = defaults

        {
            Epochs = args.GetResult(Epochs, d.Epochs)
            BatchSize = args.GetResult(Batch_Size, d.BatchSize)
            LearningRate = args.GetResult(Learning_Rate, d.LearningRate)
            TauLearningRate = args.GetResult(Tau_Learning_Rate, d.TauLearningRate)
            DelayLearningRate = args.GetResult(Delay_Learning_Rate, d.DelayLearningRate)
            Hidden = args.GetResult(Hidden, d.Hidden)
            InputsPerCue = args.GetResult(Inputs_Per_Cue, d.InputsPerCue)
            Delay = args.GetResult(Delay, d.Delay)
            Gap = args.GetResult(Gap, d.Gap)
            Window = args.GetResult(Window, d.Window)
            Jitter = args.GetResult(Jitter, d.Jitter)
            Noise = args.GetResult(Noise, d.Noise)
            Recurrence = not (args.Contains No_Recurrence)
            Delays = not (args.Contains No_Delays)
            TrainCount = args.GetResult(Train_Count, d.TrainCount)
            TestCount = args.GetResult(Test_Count, d.TestCount)
            Seed = args.GetResult(Seed, d.Seed)
            Threads = args.TryGetResult Threads
            Checkpoint = args.TryGetResult Checkpoint
            Plots = args.TryGetResult Plots
        }

    OptionChecks.parseWith "DelayedXor" settings problems argv
