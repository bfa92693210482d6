/// Timing shared by the quick subcommands: warm up, then the median of repeated runs, by the wall
/// clock or by the process's CPU time.
module Timing

open System.Diagnostics
open System.Runtime.InteropServices

[<Struct; StructLayout(LayoutKind.Sequential)>]
type private TimeSpec =
    val mutable Seconds: int64
    val mutable Nanoseconds: int64

[<DllImport("libc", EntryPoint = "clock_gettime")>]
extern int private clockGetTime(int clock, TimeSpec& time)

/// What a timed run is measured by.
type Clock =
    /// Elapsed time.
    | Wall
    /// CPU time of the whole process (Linux CLOCK_PROCESS_CPUTIME_ID): with one compute thread the
    /// time the work took on its core, without the time slices another process took on a shared
    /// machine (with more threads it is their sum, not comparable to the wall clock).
    | Cpu

    static member Parse(name: string) =
        match name with
        | "wall" -> Wall
        | "cpu" -> Cpu
        | other -> failwith $"--clock: expected wall or cpu, got '%s{other}'"

/// The process's CPU time in seconds.
let private processSeconds () =
    let mutable t = TimeSpec()

    if clockGetTime (2, &t) <> 0 then
        failwith "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed: --clock cpu needs Linux"

    float t.Seconds + 1e-9 * float t.Nanoseconds

/// Runs f `warmup` times untimed, then `reps` times timed by `clock`; the median in seconds.
let medianBy (clock: Clock) (warmup: int) (reps: int) (f: unit -> unit) : float =
    for _ in 1..warmup do
        f ()

    let times =
        Array.init reps (fun _ ->
            match clock with
            | Wall ->
                let sw = Stopwatch.StartNew()
                f ()
                sw.Elapsed.TotalSeconds
            | Cpu ->
                let t0 = processSeconds ()
                f ()
                processSeconds () - t0)

    (Array.sort times)[reps / 2]

/// Runs f `warmup` times untimed, then `reps` times timed; the median duration in seconds.
let median (warmup: int) (reps: int) (f: unit -> unit) : float = medianBy Wall warmup reps f
