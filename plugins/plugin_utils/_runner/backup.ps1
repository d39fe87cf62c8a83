# backup.ps1: backups of what a run overwrites. Writes only %ProgramData%\nhs_cm\backups\<id>.json (via
# <id>.json.tmp) and those folders, made owned by Administrators, for SYSTEM and Administrators only, no
# inheritance; a folder or file that is a reparse point or has another owner is refused. The controller
# picks the backup to restore and which of its entries may be written back.
# region: backup
$BackupFolder = Join-Path -Path $env:ProgramData -ChildPath 'nhs_cm\backups'
$AdminSids = @('S-1-5-18', 'S-1-5-32-544')
function Get-UntrustedReason {
    # $null when the file or folder is no reparse point and SYSTEM or Administrators own it.
    param([string]$Path)
    if (([System.IO.File]::GetAttributes($Path) -band [System.IO.FileAttributes]::ReparsePoint) -ne 0) { return "$Path is a link (reparse point)" }
    $owner = (Get-Acl -LiteralPath $Path).GetOwner([System.Security.Principal.SecurityIdentifier]).Value
    if ($AdminSids -notcontains $owner) { return "$Path is owned by $owner, not by SYSTEM or Administrators" }
    return $null
}
function New-AdminOnlySecurity {
    # Owner Administrators; SYSTEM and Administrators full control; inheritance off.
    param([bool]$Folder)
    $security, $inherit = (New-Object -TypeName System.Security.AccessControl.FileSecurity), 'None'
    if ($Folder) { $security, $inherit = (New-Object -TypeName System.Security.AccessControl.DirectorySecurity), 'ContainerInherit, ObjectInherit' }
    $security.SetOwner((New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList 'S-1-5-32-544'))
    $security.SetAccessRuleProtection($true, $false)
    foreach ($sid in $AdminSids) {
        $identity = New-Object -TypeName System.Security.Principal.SecurityIdentifier -ArgumentList $sid
        $security.AddAccessRule((New-Object -TypeName System.Security.AccessControl.FileSystemAccessRule -ArgumentList $identity, 'FullControl', $inherit, 'None', 'Allow'))
    }
    return $security
}
function Assert-BackupFolder {
    # Both folders (nhs_cm and nhs_cm\backups) trusted; with $Create, made when missing.
    param([bool]$Create)
    foreach ($folder in @((Split-Path -Path $BackupFolder -Parent), $BackupFolder)) {
        if ($Create -and -not [System.IO.Directory]::Exists($folder)) { $null = [System.IO.Directory]::CreateDirectory($folder, (New-AdminOnlySecurity -Folder $true)) }
        if ([System.IO.Directory]::Exists($folder)) {
            $problem = Get-UntrustedReason -Path $folder
            Assert-Allowed -Condition ($null -eq $problem) -Message "the backup folder cannot be trusted: $problem"
        }
    }
}
function Read-BackupFile {
    param([string]$Path)
    $problem = Get-UntrustedReason -Path $Path
    Assert-Allowed -Condition ($null -eq $problem) -Message "the backup cannot be trusted: $problem"
    try { $document = ConvertFrom-Json -InputObject ([System.IO.File]::ReadAllText($Path, [System.Text.Encoding]::UTF8)) } catch {
        throw (New-OpException -Kind 'failed' -Message "$Path is not valid JSON: $(Get-ErrorMessage -Exception $_.Exception)")
    }
    if ($document -isnot [System.Management.Automation.PSCustomObject] -or $null -eq $document.PSObject.Properties['entries']) {
        throw (New-OpException -Kind 'failed' -Message "$Path is not a backup (no 'entries')")
    }
    return $document
}
function Get-MissingKeys {
    # The registry keys of the reg entries that do not exist now, each once, parents first.
    param($Entries)
    $seen = @{}
    $missing = New-Object -TypeName System.Collections.Generic.List[object]
    foreach ($entry in @($Entries | Where-Object -FilterScript { $_.kind -eq 'reg' })) {
        $view = if ($null -ne $entry.PSObject.Properties['view'] -and $entry.view -eq '32') { '32' } else { '64' }
        $chain = @(); $key = [string]$entry.key
        while ($key.Contains('\') -and -not (Test-RegistryKey -Key $key -View $view)) {
            $chain = @($key) + $chain
            $key = $key.Substring(0, $key.LastIndexOf('\'))
        }
        foreach ($item in $chain) {
            if (-not $seen.ContainsKey("$view|$item")) {
                $seen["$view|$item"] = $true
                $missing.Add(@{ key = $item; view = $view })
            }
        }
    }
    return ,$missing.ToArray()
}
# region: op:backup_save
$Operations['backup_save'] = {
    param($Req)
    Assert-Allowed -Condition ($Req.id -cmatch '^[A-Za-z0-9_-]{1,80}$') -Message "'$($Req.id)' is not a backup id"
    Assert-BackupFolder -Create $true
    $path = Join-Path -Path $BackupFolder -ChildPath "$($Req.id).json"
    if ([System.IO.File]::Exists($path)) { throw (New-OpException -Kind 'invalid_request' -Message "a backup with the id '$($Req.id)' exists already") }
    $missing = Get-MissingKeys -Entries $Req.entries
    $stamp = [DateTime]::UtcNow.ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
    $json = ConvertTo-Json -InputObject ([ordered]@{ id = $Req.id; saved_at = $stamp; entries = $Req.entries; missing_keys = $missing }) -Depth 20 -Compress
    # Written whole to <path>.tmp, owned by Administrators with the protected ACL, then moved into place.
    $bytes = (New-Object -TypeName System.Text.UTF8Encoding -ArgumentList $false).GetBytes($json)
    $stream = [System.IO.File]::Create("$path.tmp", 4096, [System.IO.FileOptions]::None, (New-AdminOnlySecurity -Folder $false))
    try { $stream.Write($bytes, 0, $bytes.Length) } finally { $stream.Close() }
    [System.IO.File]::Move("$path.tmp", $path)
    return @{ ok = $true; id = $Req.id; path = $path; missing_keys = $missing }
}
# region: op:backup_load
$Operations['backup_load'] = {
    param($Req)
    Assert-Allowed -Condition ($Req.id -cmatch '^[A-Za-z0-9_-]{1,80}$') -Message "'$($Req.id)' is not a backup id"
    Assert-BackupFolder -Create $false
    $path = Join-Path -Path $BackupFolder -ChildPath "$($Req.id).json"
    if (-not [System.IO.File]::Exists($path)) { throw (New-OpException -Kind 'not_found' -Message "no backup '$($Req.id)' on this host ($path)") }
    return @{ ok = $true; backup = (Read-BackupFile -Path $path) }
}
# region: op:backup_list
$Operations['backup_list'] = {
    param($Req)
    $backups = New-Object -TypeName System.Collections.Generic.List[object]
    Assert-BackupFolder -Create $false
    if ([System.IO.Directory]::Exists($BackupFolder)) {
        # Oldest first by the time the file system keeps, never by what a file says.
        foreach ($file in @((Get-Item -LiteralPath $BackupFolder).GetFiles('*.json') | Sort-Object -Property @('LastWriteTimeUtc', 'Name'))) {
            $count, $problem = $null, $null
            try { $count = @((Read-BackupFile -Path $file.FullName).entries).Count } catch { $problem = Get-ErrorMessage -Exception $_.Exception }
            $savedAt = $file.LastWriteTimeUtc.ToString('yyyy-MM-ddTHH:mm:ss.fffZ', [System.Globalization.CultureInfo]::InvariantCulture)
            $backups.Add(@{ id = $file.BaseName; saved_at = $savedAt; entries = $count; path = $file.FullName; error = $problem })
        }
    }
    return @{ ok = $true; backups = $backups.ToArray() }
}
