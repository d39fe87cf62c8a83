# dispatch.ps1: takes the host-wide mutex (a second run waits 10 s, then answers 'busy'), unloads any
# HKU\nhs_cm_* hive a killed run left, runs the operations in order and the request's cleanup, and
# writes one line of JSON: every result, and in 'cleanup_error' what could not be cleaned up. Writes only that.
function Write-Reply {
    # One ASCII line; with $Compress: 'NHS-CM-GZIP:' and the JSON gzipped, in base64.
    param($Reply, [bool]$Compress)
    $json = ConvertTo-Json -InputObject $Reply -Compress -Depth 20
    $line = [regex]::Replace($json, '[^\x00-\x7F]', { param($m) '\u{0:x4}' -f [int][char]$m.Value })
    if ($Compress) {
        $bytes = [System.Text.Encoding]::ASCII.GetBytes($line)
        $buffer = New-Object -TypeName System.IO.MemoryStream
        $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $buffer, ([System.IO.Compression.CompressionMode]::Compress)
        $gzip.Write($bytes, 0, $bytes.Length); $gzip.Close()
        $line = 'NHS-CM-GZIP:' + [System.Convert]::ToBase64String($buffer.ToArray())
    }
    # A remote runspace (psrp connection) has no console: its pipeline output is the reply.
    if ($Host.Name -eq 'ConsoleHost') { [Console]::Out.Write($line); [Console]::Out.Flush() } else { Write-Output $line }
}
function Invoke-Operation {
    # One result: the operation's hashtable, or @{ ok = $false; error; message }.
    param($Op)
    if (-not $Operations.ContainsKey([string]$Op.op)) { return @{ ok = $false; error = 'invalid_request'; message = "unknown op '$($Op.op)'" } }
    try { $output = @(& $Operations[[string]$Op.op] $Op) }
    catch { return @{ ok = $false; error = (Get-ErrorKind -Exception $_.Exception); message = (Get-ErrorMessage -Exception $_.Exception) } }
    if ($output.Count -ne 1) { return @{ ok = $false; error = 'failed'; message = "runner bug: op '$($Op.op)' produced $($output.Count) outputs" } }
    return $output[0]
}
$reply = @{ runner = 'nhs_cm'; protocol = 1; ok = $true; results = @() }
$exitCode, $compress, $mutex, $owned = 0, $false, $null, $false
$problems = New-Object -TypeName System.Collections.Generic.List[string]
try {
    try { $request = ConvertFrom-Json -InputObject $RequestJson } catch { throw (New-OpException -Kind 'invalid_request' -Message "the request is not JSON: $($_.Exception.Message)") }
    $compress = $null -ne $request.PSObject.Properties['compress'] -and $request.compress -eq $true
    if ($request.protocol -ne 1) { throw (New-OpException -Kind 'invalid_request' -Message 'the request must have protocol 1') }
    $mutex = New-Object -TypeName System.Threading.Mutex -ArgumentList $false, 'Global\nhs_cm_runner'
    # An abandoned mutex (the run that held it was killed) is owned by this run now.
    try { $owned = $mutex.WaitOne(10000) } catch [System.Threading.AbandonedMutexException] { $owned = $true }
    if (-not $owned) { throw (New-OpException -Kind 'busy' -Message 'another nhs_cm run is in progress on this PC (mutex Global\nhs_cm_runner); try again later') }
    foreach ($mount in [Microsoft.Win32.Registry]::Users.GetSubKeyNames()) {
        if ($mount -match '^nhs_cm_[0-9a-f]{12}$') {
            $problem = Dismount-Hive -Mount $mount
            if ($null -ne $problem) { $problems.Add("HKU\$mount, left loaded by an earlier run, cannot be unloaded: $problem") }
        }
    }
    $stopWrites = $null -ne $request.PSObject.Properties['write_errors'] -and $request.write_errors -eq 'stop'
    $writeOps = @('reg_write', 'reg_delete', 'reg_delete_key', 'backup_save', 'service_set', 'task_run', 'process_stop')
    $results = New-Object -TypeName System.Collections.Generic.List[object]
    $failedWrite = $null
    foreach ($op in $request.ops) {
        $isWrite = $writeOps -contains [string]$op.op
        if ($isWrite -and $null -ne $failedWrite) {
            $results.Add(@{ ok = $false; error = 'skipped'; message = "not run: $failedWrite failed before it (write_errors: stop)" })
            continue
        }
        $result = Invoke-Operation -Op $op
        $results.Add($result)
        if ($isWrite -and $stopWrites -and -not $result['ok']) { $failedWrite = 'ops[{0}] ({1})' -f ($results.Count - 1), $op.op }
    }
    $reply['results'] = $results.ToArray()
} catch {
    $kind = Get-ErrorKind -Exception $_.Exception
    if (@('invalid_request', 'busy') -notcontains $kind) { $kind = 'failed' }
    $reply = @{ runner = 'nhs_cm'; protocol = 1; ok = $false; error = $kind; message = (Get-ErrorMessage -Exception $_.Exception); results = @() }
    $exitCode = 1
} finally {
    foreach ($action in $Cleanup) {
        try { $problem = & $action } catch { $problem = Get-ErrorMessage -Exception $_.Exception }
        if (-not [string]::IsNullOrEmpty([string]$problem)) { $problems.Add([string]$problem) }
    }
    if ($owned) { $mutex.ReleaseMutex() }
    if ($null -ne $mutex) { $mutex.Dispose() }
}
if ($problems.Count -gt 0) { $reply['cleanup_error'] = $problems -join '; ' }
Write-Reply -Reply $reply -Compress $compress
exit $exitCode
