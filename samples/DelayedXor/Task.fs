/// The delayed-XOR task, a memory task for spiking networks, generated deterministically from a key.
///
/// A trial is a time grid of steps of 1 ms and 2 · K input neurons in two groups, one per cue value
/// (group 0: neurons 0 .. K-1, group 1: neurons K .. 2K-1). Two cues arrive, each a value a, b in
/// {0, 1} shown by one spike of every neuron of its group at the cue's onset:
///
/// ```
/// step  0   t1 = 1+J+u1          t2 = 1+J+D+u2                 w0 = 1+2J+D+G        T = w0+W
///       |   cue a (all K of       cue b                 silence  |  response window  |
///       |   group a spike)        (group b)                      |  (readout's max)  |
/// ```
///
/// with u1, u2 uniform in {-J .. J} (jitter), D the delay between the cues, G the silent gap after
/// the latest possible second cue and W the response window. The label is a XOR b: 1 when the two
/// cues differ, 0 when they match. Every input neuron also fires background spikes: at each step
/// with probability `noise · dt`, independently.
///
/// The answer is read in the window only, long after the second cue, and a network without memory
/// sees one cue at a time: the second cue alone says nothing of the label (both values are equally
/// likely in each class), so without memory it is at chance. D = 60 ms by default: six times the
/// default membrane time constant (10 ms; the sample's hidden neurons start between 5 and 20 ms),
/// by which a cue's subthreshold trace has decayed to e^-6 (e^-3 for the slowest neurons).
///
/// Balance: trial i of a set gets the cue pair i mod 4 ((0,0), (0,1), (1,0), (1,1)) before the
/// trials are shuffled, so each pair occurs n/4 times (rounded) and the two classes are balanced to
/// within one trial. Everything random is drawn from SnnFunc's counter-based keys, so the same key
/// gives the same trials on any machine and thread count.
module DelayedXorTask

open SnnFunc

/// The time layout of a trial and its inputs (all in steps of 1 ms but the noise rate).
type Layout =
    {
        /// K: input neurons per cue value (2K inputs in all).
        InputsPerCue: int
        /// D: steps between the two cues' (unjittered) onsets.
        Delay: int
        /// G: silent steps between the latest possible second cue and the response window.
        Gap: int
        /// W: steps of the response window.
        Window: int
        /// J: each onset moves by a uniform whole number of steps in [-J, J].
        Jitter: int
        /// Background spikes per second on every input neuron.
        Noise: float
    }

/// The step length, seconds.
let dt = 1e-3

/// The layout of a sample's settings.
let layoutOf (s: DelayedXorOptions.Settings) =
    {
        InputsPerCue = s.InputsPerCue
        Delay = s.Delay
        Gap = s.Gap
        Window = s.Window
        Jitter = s.Jitter
        Noise = s.Noise
    }

/// 2K input neurons.
let inputs (l: Layout) = 2 * l.InputsPerCue

/// The first step of the response window, w0 = 1 + 2J + D + G.
let windowStart (l: Layout) = 1 + 2 * l.Jitter + l.Delay + l.Gap

/// Steps of a trial, T = w0 + W.
let steps (l: Layout) = windowStart l + l.Window

/// A set of trials.
type Trials =
    {
        Layout: Layout
        /// Input spikes, trial-major: trial n, step t, input neuron k at (n · T + t) · 2K + k; 0 or 1.
        Spikes: float32[]
        /// The first and the second cue's value, per trial.
        First: int[]
        Second: int[]
        /// The onset steps of the two cues, per trial.
        FirstAt: int[]
        SecondAt: int[]
        /// First XOR Second.
        Labels: int[]
    }

    member d.Count = d.Labels.Length

/// `count` trials drawn from `key`.
let generate (layout: Layout) (key: RandomBits.Key) (count: int) : Trials =
    if count < 0 then
        invalidArg "count" $"DelayedXorTask.generate: count must be >= 0, got %d{count}"

    let l = layout
    let n, t, k = count, steps l, inputs l

    let kOrder, kJitter, kNoise =
        Random.split key |> fun (a, b) -> a, Random.foldIn b 1, Random.foldIn b 2
    // The cue pairs in a balanced list, shuffled by sorting on uniform draws.
    let order =
        (Random.uniformAs Float64 kOrder [| max 1 n |]).ToDoubleArray()
        |> Array.truncate n
        |> Array.mapi (fun i u -> u, i)
        |> Array.sort
        |> Array.map snd

    let pair = order |> Array.map (fun i -> i % 4)
    let first = pair |> Array.map (fun p -> p / 2)
    let second = pair |> Array.map (fun p -> p % 2)
    // Onsets: uniform whole shifts in [-J, J].
    let u = (Random.uniformAs Float64 kJitter [| max 1 n; 2 |]).ToDoubleArray()

    let shift (x: float) =
        min l.Jitter (int (x * float (2 * l.Jitter + 1)) - l.Jitter)

    let firstAt = Array.init n (fun i -> 1 + l.Jitter + shift u[2 * i])
    let secondAt = Array.init n (fun i -> 1 + l.Jitter + l.Delay + shift u[2 * i + 1])

    let spikes =
        if l.Noise > 0.0 && n > 0 then
            (Random.bernoulli kNoise (l.Noise * dt) [| n; t; k |]).ToArray()
        else
            Array.zeroCreate (n * t * k)

    let cue (trial: int) (at: int) (value: int) =
        for j in 0 .. l.InputsPerCue - 1 do
            spikes[(trial * t + at) * k + value * l.InputsPerCue + j] <- 1.0f

    for i in 0 .. n - 1 do
        cue i firstAt[i] first[i]
        cue i secondAt[i] second[i]

    {
        Layout = l
        Spikes = spikes
        First = first
        Second = second
        FirstAt = firstAt
        SecondAt = secondAt
        Labels = Array.map2 (^^^) first second
    }

/// The training and test sets of a seed: distinct keys per split.
let splits (layout: Layout) (seed: int64) (trainCount: int) (testCount: int) =
    let key = Random.key seed
    generate layout (Random.foldIn key 0) trainCount, generate layout (Random.foldIn key 1) testCount

/// The input spikes of the given trials, time-major [T; trials; 2K], and their labels.
let batch (d: Trials) (trials: int[]) : Tensor * int[] =
    let t, k = steps d.Layout, inputs d.Layout
    let b = trials.Length
    let x = Array.zeroCreate<float32> (t * b * k)

    trials
    |> Array.iteri (fun j n ->
        for s in 0 .. t - 1 do
            Array.blit d.Spikes ((n * t + s) * k) x ((s * b + j) * k) k)

    Tensor.FromArray(x, t, b, k), trials |> Array.map (fun n -> d.Labels[n])
