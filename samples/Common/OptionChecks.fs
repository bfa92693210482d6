/// The samples' shared command-line checks: each returns None for a valid value, else one line
/// naming the option and what it must be; `parseWith` turns Argu's outcome and those lines into
/// the samples' exit codes. Linked into every sample project (a file, not a library: a sample
/// stays one project a reader can copy).
module internal OptionChecks

open System
open Argu

/// None if an integer option lies in [lo, hi].
let intIn (option: string) (lo: int) (hi: int) (value: int) =
    if value >= lo && value <= hi then
        None
    else
        Some $"--%s{option} must be an integer in [%d{lo}, %d{hi}], got %d{value}"

/// None for a positive finite number.
let positive (option: string) (value: float) =
    if value > 0.0 && not (Double.IsInfinity value) then
        None
    else
        Some $"--%s{option} must be a positive finite number, got %g{value}"

/// None for a number in [lo, hi] (NaN is outside).
let between (option: string) (lo: float) (hi: float) (value: float) =
    if value >= lo && value <= hi then
        None
    else
        Some $"--%s{option} must be a number in [%g{lo}, %g{hi}], got %g{value}"

/// None for a number in [lo, hi) (NaN is outside).
let fraction (option: string) (lo: float) (hi: float) (value: float) =
    if value >= lo && value < hi then
        None
    else
        Some $"--%s{option} must be a number in [%g{lo}, %g{hi}), got %g{value}"

/// None for a usable path option (absent, or not blank).
let path (option: string) (value: string option) =
    match value with
    | Some p when String.IsNullOrWhiteSpace p -> Some $"--%s{option} must be a non-empty path"
    | _ -> None

/// None for a usable output folder (absent, or a non-blank path that is not an existing file).
let folder (option: string) (value: string option) =
    match value with
    | Some p when String.IsNullOrWhiteSpace p -> Some $"--%s{option} must be a non-empty path"
    | Some p when IO.File.Exists p -> Some $"--%s{option}: '%s{p}' is a file, not a folder"
    | _ -> None

/// None unless a file to read is named and absent.
let existingFile (option: string) (value: string option) =
    match value with
    | Some p when not (String.IsNullOrWhiteSpace p) && not (IO.File.Exists p) -> Some $"--%s{option}: no file '%s{p}'"
    | _ -> None

/// Parses `argv` for `program` and validates the settings. Error(exit code, text for stderr): 0
/// with the usage for --help, 2 for Argu's errors (its message and the usage) and for an invalid
/// value (the first problem, one line prefixed with the program's name).
let parseWith
    (program: string)
    (settings: ParseResults<'A> -> 'S)
    (problems: 'S -> string option list)
    (argv: string[])
    : Result<'S, int * string> =
    let parser = ArgumentParser.Create<'A>(programName = program)

    try
        let s = settings (parser.ParseCommandLine argv)

        match List.choose id (problems s) with
        | first :: _ -> Error(2, $"%s{program}: %s{first}")
        | [] -> Ok s
    with :? ArguParseException as e ->
        Error((if e.ErrorCode = ErrorCode.HelpText then 0 else 2), e.Message)
