/// Wall-clock timing shared by the quick subcommands: warm up, then the median of repeated runs.
module Timing

open System.Diagnostics

/// Runs f `warmup` times untimed, then `reps` times timed; the median duration in seconds.
let median (warmup: int) (reps: int) (f: unit -> unit) : float =
    for _ in 1..warmup do
        f ()

    let times =
        Array.init reps (fun _ ->
            let sw = Stopwatch.StartNew()
            f ()
            sw.Elapsed.TotalSeconds)

    (Array.sort times)[reps / 2]
