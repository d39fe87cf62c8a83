# processes.ps1: running processes and the interactive sessions they show. A session's user is the
# owner of its explorer.exe, else of any of its processes that a person owns ($UserSidPattern):
# nothing is compiled on the host, so the session's connection state is not known. Writes nothing.
# region: processes
function Get-ProcessImages {
    # Process id -> image path of every process, from one CIM query (also for 32-bit processes).
    $images = @{}
    try {
        foreach ($item in @(Get-CimInstance -ClassName Win32_Process -Property @('ProcessId', 'ExecutablePath') -OperationTimeoutSec 60)) {
            if (-not [string]::IsNullOrEmpty($item.ExecutablePath)) { $images[[int]$item.ProcessId] = [string]$item.ExecutablePath }
        }
    } catch { $images = @{} }
    return $images
}
# region: op:process_list
$Operations['process_list'] = {
    param($Req)
    # Owners come from Get-Process -IncludeUserName, which needs elevation: when it fails every
    # owner is unknown (null), and user_error says why.
    $userError = $null
    try { $all = @(Get-Process -IncludeUserName) } catch { $userError = 'Get-Process -IncludeUserName failed: ' + (Get-ErrorMessage -Exception $_.Exception) }
    if ($null -ne $userError) { $all = @(Get-Process) }
    $images = Get-ProcessImages
    $processes = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($process in $all) {
        $image = $images[[int]$process.Id]
        if ($null -eq $image) { try { $image = [string]$process.Path } catch { $image = '' } }
        $image = if ($image -eq '') { $null } else { $image }
        $name = if ($null -eq $image) { [string]$process.ProcessName } else { [System.IO.Path]::GetFileName($image) }
        $user = if ($null -eq $userError -and -not [string]::IsNullOrEmpty($process.UserName)) { [string]$process.UserName } else { $null }
        $processes.Add(@{ pid = [int]$process.Id; name = $name; image = $image; session = [int]$process.SessionId; user = $user; version = (Get-FileVersion -Path $image) })
    }
    return @{ ok = $true; processes = $processes.ToArray(); user_error = $userError }
}
# region: op:session_list
$Operations['session_list'] = {
    param($Req)
    $sids = @{}
    $owners = @{}
    # explorer.exe first: the shell of the session's user.
    foreach ($process in @(Get-Process -IncludeUserName | Sort-Object -Property @{ Expression = { $_.ProcessName -ne 'explorer' } })) {
        $id = [int]$process.SessionId
        $account = [string]$process.UserName
        if ($id -eq 0 -or $account -eq '' -or $owners.ContainsKey($id)) { continue }
        if (-not $sids.ContainsKey($account)) {
            try { $sids[$account] = [string](New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $account).Translate([System.Security.Principal.SecurityIdentifier]).Value } catch { $sids[$account] = $null }
        }
        if ($sids[$account] -match $UserSidPattern) { $owners[$id] = $account }
    }
    $sessions = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($id in @($owners.Keys | Sort-Object)) { $sessions.Add(@{ id = $id; user = $owners[$id]; sid = $sids[$owners[$id]] }) }
    return @{ ok = $true; sessions = $sessions.ToArray() }
}
