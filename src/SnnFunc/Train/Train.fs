/// Training helpers: the epoch loop with live progress (or plain log lines when not in a terminal),
/// and checkpoints of parameters, optimizer state and epoch as .npz files, written atomically.
namespace SnnFunc

open System
open System.IO
open Spectre.Console

/// A named scalar reported by training (loss, accuracy, spikes per sample ...).
type Metric = string * float

[<RequireQualifiedAccess>]
module Train =

    let private format (metrics: Metric list) =
        metrics |> List.map (fun (k, v) -> $"%s{k}=%.4f{v}") |> String.concat " "

    /// Means of metrics over the steps of an epoch, by name, in first-seen order.
    let average (perStep: Metric list seq) : Metric list =
        let all = perStep |> Seq.concat |> List.ofSeq
        let names = all |> List.map fst |> List.distinct

        names
        |> List.map (fun n -> n, all |> List.filter (fst >> (=) n) |> List.averageBy snd)

    /// True when a live progress display makes sense (an interactive terminal, not CI or a pipe).
    let interactive () =
        not Console.IsOutputRedirected
        && Environment.GetEnvironmentVariable "CI" <> "true"
        && AnsiConsole.Profile.Capabilities.Interactive

    /// Runs epochs startEpoch .. epochs-1: each calls `step epoch batch` for every batch (returning
    /// that batch's metrics), then `endEpoch epoch averages` (evaluate, checkpoint; returns extra
    /// metrics). Shows a progress bar in a terminal and one log line per epoch otherwise.
    let run
        (startEpoch: int)
        (epochs: int)
        (batches: int)
        (step: int -> int -> Metric list)
        (endEpoch: int -> Metric list -> Metric list)
        : unit =
        if batches <= 0 then
            invalidArg "batches" $"Train.run: batches must be positive, got %d{batches}"

        let runEpoch (epoch: int) (progress: int -> Metric list -> unit) =
            let results = ResizeArray()

            for b in 0 .. batches - 1 do
                let m = step epoch b
                results.Add m
                progress (b + 1) m

            let averages = average results
            averages @ endEpoch epoch averages

        if interactive () then
            for epoch in startEpoch .. epochs - 1 do
                let mutable summary = []

                AnsiConsole
                    .Progress()
                    .Columns(TaskDescriptionColumn(), ProgressBarColumn(), PercentageColumn(), RemainingTimeColumn())
                    .Start(fun ctx ->
                        let task = ctx.AddTask($"epoch %d{epoch + 1}/%d{epochs}", true, float batches)

                        summary <-
                            runEpoch epoch (fun _ m ->
                                task.Increment 1.0
                                task.Description <- $"epoch %d{epoch + 1}/%d{epochs} %s{format m}"))

                printfn "epoch %d %s" (epoch + 1) (format summary)
        else
            for epoch in startEpoch .. epochs - 1 do
                let summary = runEpoch epoch (fun _ _ -> ())
                printfn "epoch %d %s" (epoch + 1) (format summary)
                Console.Out.Flush()

    // Checkpoints -----------------------------------------------------------------------------------

    /// Saves parameters, optimizer state and the number of completed epochs as one .npz file. The
    /// file is replaced atomically: an interrupted save leaves the previous checkpoint intact.
    let saveCheckpoint (path: string) (parameters: 'P) (optState: OptState) (epochsDone: int) : unit =
        let ps = Tree.leaves parameters
        let os = Tree.leaves optState

        let entries =
            [
                yield "epochs_done", Tensor.Scalar(float epochsDone, Float64)
                for i in 0 .. ps.Length - 1 -> $"param_%04d{i}", ps[i]
                for i in 0 .. os.Length - 1 -> $"opt_%04d{i}", os[i]
            ]

        match Path.GetDirectoryName(Path.GetFullPath path) with
        | null -> ()
        | dir -> Directory.CreateDirectory dir |> ignore

        Npz.save path entries

    let private invalidDataException (path: string) (message: string) : 'a =
        raise (InvalidDataException $"%s{message} (file %s{path})")

    /// Loads a checkpoint into the structures of `parametersLike` and `optStateLike` (shapes must
    /// match); returns the parameters, optimizer state and number of completed epochs.
    let loadCheckpoint (path: string) (parametersLike: 'P) (optStateLike: OptState) : 'P * OptState * int =
        let arrays = Npz.load path

        let take (prefix: string) (like: Tensor[]) =
            like
            |> Array.mapi (fun i l ->
                let name = $"%s{prefix}_%04d{i}"

                match arrays.TryFind name with
                | None -> invalidDataException path $"checkpoint has no array '%s{name}'"
                | Some t when t.ShapeRef <> l.ShapeRef ->
                    invalidDataException
                        path
                        $"checkpoint array '%s{name}' has shape %s{Shape.format t.ShapeRef}, expected %s{Shape.format l.ShapeRef}"
                | Some t -> t.Convert l.DType)

        let ps, pdef = Tree.flatten parametersLike
        let os, odef = Tree.flatten optStateLike

        let epochs =
            arrays.TryFind "epochs_done"
            |> Option.map (fun t -> int (t.ToScalar()))
            |> Option.defaultValue 0

        Tree.unflatten pdef (take "param" ps), Tree.unflatten odef (take "opt" os), epochs
