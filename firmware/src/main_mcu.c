/* Entry point of the microcontroller builds: board bring-up, then the device loop. */
#include "board.h"
#include "device.h"

int main(void)
{
    board_init();
    fw_run();
    return 0;
}
